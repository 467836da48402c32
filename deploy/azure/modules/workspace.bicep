// The Azure ML workspace (MLflow tracking and registry, jobs, endpoints) and its own storage
// account. That account stays plain Blob (no hierarchical namespace): it holds the workspace's
// artifacts and snapshots, while the platform's data lives in the separate lake account.
param location string
param tags object
param name string
param friendlyName string
param storageAccountName string
param keyVaultId string
param registryId string
param appInsightsId string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    isHnsEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  sku: {
    name: 'Basic'
    tier: 'Basic'
  }
  properties: {
    friendlyName: friendlyName
    storageAccount: storage.id
    keyVault: keyVaultId
    containerRegistry: registryId
    applicationInsights: appInsightsId
    // System datastores keep the default key-based access: job submission uploads code
    // snapshots there, and the policy's AzureML roles then suffice without Blob data roles.
    publicNetworkAccess: 'Enabled'
  }
}

output name string = workspace.name
output id string = workspace.id
