// The workspace's key vault, authorized with Azure RBAC (no access policies), so the policy's
// Key Vault roles (Key Vault Secrets Officer for platform_support) are what grants access.
param location string
param tags object
param name string

@description('Prod keeps purge protection: a deleted vault and its secrets stay recoverable')
param purgeProtection bool

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Once on, purge protection cannot be switched off: dev leaves it unset so it can be torn down.
    enablePurgeProtection: purgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

output id string = vault.id
output name string = vault.name
