// Persona role assignments, generated from the RBAC policy's `azure_roles`
// (mlops_core/governance/rbac_policy.yaml) by `mlops policy bicep-params --env dev|prod`.
// Deploy it after main.bicep, into the same resource group; never edit the generated
// parameters by hand: change the policy and generate them again.
//
// Each assignment names the kind of resource it applies to; the policy's scope placeholders
// map onto them (mlops_core/governance/azure_iac.py):
//   ${*_WORKSPACE_SCOPE} -> workspace      ${*_KEYVAULT_SCOPE} -> keyVault
//   ${*_STORAGE_SCOPE}   -> lake           ${*_RG_SCOPE}       -> resourceGroup
//   ${PROD_ENDPOINT_SCOPE} -> endpoint (an online endpoint the platform created, by name)
// `lake` is the lake container, not the whole account: persona data roles never reach the
// governance records, Pipes messages or audit anchors kept in the same account.
//
// Role assignments are additive: deploying a policy with fewer grants does not remove old
// ones (docs/azure-infrastructure.md says how to find and delete them).
targetScope = 'resourceGroup'

type assignment = {
  persona: string
  role: string
  roleDefinitionId: string
  principalId: string
  principalType: ('Group' | 'ServicePrincipal' | 'User')
  scope: ('workspace' | 'lake' | 'keyVault' | 'resourceGroup' | 'endpoint')
  endpointName: string
}

@description('The Azure ML workspace main.bicep created (its workspaceName)')
param workspaceName string

@description('The data lake account (main.bicep\'s lakeAccountName)')
param lakeAccountName string

@description('The lake container inside it (main.bicep\'s lakeContainerName)')
param lakeContainerName string

@description('The workspace key vault (main.bicep\'s keyVaultName)')
param keyVaultName string

@description('sha256 of the policy file the assignments came from, kept in the deployment\'s outputs')
param policySha256 string

@description('One entry per persona, role and resource, from the policy')
param assignments assignment[]

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: lakeAccountName
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource lake 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobs
  name: lakeContainerName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

var onWorkspace = filter(assignments, a => a.scope == 'workspace')
var onLake = filter(assignments, a => a.scope == 'lake')
var onVault = filter(assignments, a => a.scope == 'keyVault')
var onGroup = filter(assignments, a => a.scope == 'resourceGroup')
var onEndpoint = filter(assignments, a => a.scope == 'endpoint')

resource endpoints 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-04-01' existing = [
  for a in onEndpoint: {
    parent: workspace
    name: a.endpointName
  }
]

resource workspaceRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in onWorkspace: {
    name: guid(workspace.id, a.principalId, a.roleDefinitionId)
    scope: workspace
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
      principalId: a.principalId
      principalType: a.principalType
      description: 'mlops policy: ${a.persona} (${a.role})'
    }
  }
]

resource lakeRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in onLake: {
    name: guid(lake.id, a.principalId, a.roleDefinitionId)
    scope: lake
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
      principalId: a.principalId
      principalType: a.principalType
      description: 'mlops policy: ${a.persona} (${a.role})'
    }
  }
]

resource vaultRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in onVault: {
    name: guid(vault.id, a.principalId, a.roleDefinitionId)
    scope: vault
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
      principalId: a.principalId
      principalType: a.principalType
      description: 'mlops policy: ${a.persona} (${a.role})'
    }
  }
]

resource groupRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in onGroup: {
    name: guid(resourceGroup().id, a.principalId, a.roleDefinitionId)
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
      principalId: a.principalId
      principalType: a.principalType
      description: 'mlops policy: ${a.persona} (${a.role})'
    }
  }
]

resource endpointRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (a, i) in onEndpoint: {
    name: guid(endpoints[i].id, a.principalId, a.roleDefinitionId)
    scope: endpoints[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.roleDefinitionId)
      principalId: a.principalId
      principalType: a.principalType
      description: 'mlops policy: ${a.persona} (${a.role})'
    }
  }
]

output policySha256 string = policySha256
output assignmentCount int = length(assignments)
