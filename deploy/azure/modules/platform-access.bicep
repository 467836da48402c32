// Grants to the platform's own identities, which are not personas of the RBAC policy:
//   - each compute cluster's identity reads the lake (training data) and writes Pipes messages;
//   - the identity Dagster runs as (platformPrincipalId) reads and writes the lake, Pipes,
//     governance and audit anchor containers and runs jobs and endpoints in the workspace.
// Grants are per container, never on the whole account, so no data role on the lake reaches
// the governance records or the audit anchors. Role ids: mlops_core/governance/azure_builtin_roles.yaml.
param workspaceName string
param lakeAccountName string
param lakeContainerName string
param pipesContainerName string
param governanceContainerName string
param auditAnchorContainerName string
param clusterPrincipalIds array
param platformPrincipalId string

@allowed([
  'ServicePrincipal'
  'Group'
  'User'
])
param platformPrincipalType string

var blobReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // Storage Blob Data Reader
var blobContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
var dataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121' // AzureML Data Scientist
var platformContainers = [
  lakeContainerName
  pipesContainerName
  governanceContainerName
  auditAnchorContainerName
]

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

resource pipes 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobs
  name: pipesContainerName
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [
  for name in platformContainers: {
    parent: blobs
    name: name
  }
]

resource clusterReadsLake 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in clusterPrincipalIds: {
    name: guid(lake.id, principalId, blobReader)
    scope: lake
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobReader)
      principalId: principalId
      principalType: 'ServicePrincipal'
      description: 'mlops platform: compute cluster reads training data'
    }
  }
]

resource clusterWritesPipes 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principalId in clusterPrincipalIds: {
    name: guid(pipes.id, principalId, blobContributor)
    scope: pipes
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
      principalId: principalId
      principalType: 'ServicePrincipal'
      description: 'mlops platform: compute cluster writes Dagster Pipes messages'
    }
  }
]

resource platformData 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in platformContainers: if (!empty(platformPrincipalId)) {
    name: guid(containers[i].id, platformPrincipalId, blobContributor)
    scope: containers[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
      principalId: platformPrincipalId
      principalType: platformPrincipalType
      description: 'mlops platform: Dagster reads and writes ${name}'
    }
  }
]

resource platformWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(platformPrincipalId)) {
  name: guid(workspace.id, platformPrincipalId, dataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataScientist)
    principalId: platformPrincipalId
    principalType: platformPrincipalType
    description: 'mlops platform: Dagster runs jobs, registers models, deploys endpoints'
  }
}
