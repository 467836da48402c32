// One MLOps v2 environment in one resource group: `dev` (the RBAC policy's preprod, where
// models are built, tested and staged) or `prod`. Deploy it once per environment with
// parameters.dev.json / parameters.prod.json (docs/azure-infrastructure.md).
//
// The persona role assignments are a second, separate deployment of modules/roles.bicep whose
// parameters `mlops policy bicep-params` generates from mlops_core/governance/rbac_policy.yaml:
// the policy changes more often than the infrastructure, and granting roles needs a stronger
// right (Role Based Access Control Administrator) than creating resources.
targetScope = 'resourceGroup'

@description('dev (MLOps v2 preprod: build, test, stage) or prod')
@allowed([
  'dev'
  'prod'
])
param environment string

@description('Region of every resource; the resource group\'s by default')
param location string = resourceGroup().location

@description('Tags added to every resource, besides mlops-environment and managed-by')
param tags object = {}

@description('Azure ML workspace (AZUREML_DEV_WORKSPACE or AZUREML_PROD_WORKSPACE)')
@minLength(3)
@maxLength(33)
param workspaceName string

@description('The workspace\'s own storage (artifacts, snapshots): plain Blob, no hierarchical namespace')
@minLength(3)
@maxLength(24)
param workspaceStorageAccountName string

@description('The data lake: ADLS Gen2 account holding the lake, Pipes, governance and audit anchor containers')
@minLength(3)
@maxLength(24)
param lakeAccountName string

@minLength(3)
@maxLength(24)
param keyVaultName string

@minLength(5)
@maxLength(50)
param registryName string

@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param registrySku string = 'Basic'

param logAnalyticsName string
param appInsightsName string

@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Blob redundancy of the data lake')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
])
param lakeSku string = 'Standard_LRS'

@description('MLOPS_LAKE_CONTAINER: datasets, features, inference logs')
param lakeContainerName string = 'lake'

@description('MLOPS_PIPES_CONTAINER: Dagster Pipes context and messages of training jobs')
param pipesContainerName string = 'pipes'

@description('MLOPS_GOVERNANCE_CONTAINER: approval and staging records (compare-and-set blobs)')
param governanceContainerName string = 'governance'

@description('MLOPS_AUDIT_ANCHOR_CONTAINER: audit trail heads, under a time-based immutability policy')
param auditAnchorContainerName string = 'audit-anchors'

@description('Days each audit anchor blob stays undeletable and unchangeable')
@minValue(1)
@maxValue(146000)
param auditAnchorRetentionDays int

@description('true once the anchor policy is locked: a locked policy can only be extended (az storage container immutability-policy extend), so the template stops writing it')
param auditAnchorPolicyLocked bool = false

@description('AZUREML_COMPUTE: the CPU cluster for tabular training')
param cpuClusterName string = 'cpu-cluster'
param cpuVmSize string = 'Standard_DS3_v2'

@minValue(1)
param cpuMaxNodes int

@description('GPU cluster for vision and NLP training; scales to zero when idle')
param gpuClusterName string = 'gpu-cluster'
param gpuVmSize string = 'Standard_NC4as_T4_v3'

@minValue(1)
param gpuMaxNodes int

@description('Object id of the identity Dagster runs as (lake, Pipes, governance, anchors, workspace); empty: no platform grants')
param platformPrincipalId string = ''

@allowed([
  'ServicePrincipal'
  'Group'
  'User'
])
param platformPrincipalType string = 'ServicePrincipal'

var allTags = union(tags, {
  'mlops-environment': environment
  'managed-by': 'bicep'
})

module monitoring 'modules/monitoring.bicep' = {
  name: '${deployment().name}-monitoring'
  params: {
    location: location
    tags: allTags
    logAnalyticsName: logAnalyticsName
    appInsightsName: appInsightsName
    retentionInDays: logRetentionDays
  }
}

module lake 'modules/lake.bicep' = {
  name: '${deployment().name}-lake'
  params: {
    location: location
    tags: allTags
    accountName: lakeAccountName
    skuName: lakeSku
    lakeContainerName: lakeContainerName
    pipesContainerName: pipesContainerName
    governanceContainerName: governanceContainerName
    auditAnchorContainerName: auditAnchorContainerName
    auditAnchorRetentionDays: auditAnchorRetentionDays
    auditAnchorPolicyLocked: auditAnchorPolicyLocked
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: '${deployment().name}-keyvault'
  params: {
    location: location
    tags: allTags
    name: keyVaultName
    purgeProtection: environment == 'prod'
  }
}

module registry 'modules/registry.bicep' = {
  name: '${deployment().name}-registry'
  params: {
    location: location
    tags: allTags
    name: registryName
    sku: registrySku
  }
}

module workspace 'modules/workspace.bicep' = {
  name: '${deployment().name}-workspace'
  params: {
    location: location
    tags: allTags
    name: workspaceName
    friendlyName: 'MLOps ${environment}'
    storageAccountName: workspaceStorageAccountName
    keyVaultId: keyVault.outputs.id
    registryId: registry.outputs.id
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

module compute 'modules/compute.bicep' = {
  name: '${deployment().name}-compute'
  params: {
    location: location
    tags: allTags
    workspaceName: workspace.outputs.name
    cpuClusterName: cpuClusterName
    cpuVmSize: cpuVmSize
    cpuMaxNodes: cpuMaxNodes
    gpuClusterName: gpuClusterName
    gpuVmSize: gpuVmSize
    gpuMaxNodes: gpuMaxNodes
  }
}

module access 'modules/platform-access.bicep' = {
  name: '${deployment().name}-platform-access'
  params: {
    workspaceName: workspace.outputs.name
    lakeAccountName: lake.outputs.accountName
    lakeContainerName: lakeContainerName
    pipesContainerName: pipesContainerName
    governanceContainerName: governanceContainerName
    auditAnchorContainerName: auditAnchorContainerName
    clusterPrincipalIds: compute.outputs.principalIds
    platformPrincipalId: platformPrincipalId
    platformPrincipalType: platformPrincipalType
  }
}

// The platform's variables (docs/azure.md); the role deployment reads the same names.
output workspaceName string = workspace.outputs.name
output lakeAccountUrl string = lake.outputs.blobEndpoint
output lakeContainer string = lakeContainerName
output pipesContainer string = pipesContainerName
output governanceContainer string = governanceContainerName
output auditAnchorContainer string = auditAnchorContainerName
output computeName string = compute.outputs.cpuClusterName
output gpuComputeName string = compute.outputs.gpuClusterName
output keyVaultName string = keyVault.outputs.name
output registryLoginServer string = registry.outputs.loginServer
