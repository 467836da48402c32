// The data lake: an ADLS Gen2 account (hierarchical namespace) with the platform's four
// containers. The platform reads and writes it through the Blob API with Entra ID
// (DefaultAzureCredential), so shared keys are off.
//
// The audit anchor container carries a container-level time-based retention (WORM) policy:
// anchors can be created and read, never overwritten or deleted while retained. ARM can create
// the policy but not lock it; locking is a separate, irreversible step
// (docs/azure-infrastructure.md), after which `auditAnchorPolicyLocked` must be true.
param location string
param tags object
param accountName string

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
])
param skuName string

param lakeContainerName string
param pipesContainerName string
param governanceContainerName string
param auditAnchorContainerName string

@minValue(1)
@maxValue(146000)
param auditAnchorRetentionDays int

param auditAnchorPolicyLocked bool

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    isHnsEnabled: true
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

var plainContainers = [
  lakeContainerName
  pipesContainerName
  governanceContainerName
]

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for name in plainContainers: {
    parent: blobs
    name: name
    properties: {
      publicAccess: 'None'
    }
  }
]

resource anchors 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: auditAnchorContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource anchorRetention 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (!auditAnchorPolicyLocked) {
  parent: anchors
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: auditAnchorRetentionDays
    // Each anchor is a new blob; nothing may append to or rewrite one.
    allowProtectedAppendWrites: false
  }
}

output accountName string = account.name
// MLOPS_LAKE_ACCOUNT_URL: the Blob endpoint without its trailing slash.
output blobEndpoint string = 'https://${account.name}.blob.${environment().suffixes.storage}'
