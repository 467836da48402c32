// Container registry for the workspace's environments (training and scoring images).
param location string
param tags object
param name string

@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param sku string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
  }
  properties: {
    // Entra ID (the workspace's managed identity, AcrPull/AcrPush) instead of a shared admin password.
    adminUserEnabled: false
  }
}

output id string = registry.id
output loginServer string = registry.properties.loginServer
