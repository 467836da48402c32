// Training compute: a CPU cluster for tabular models and a GPU cluster for vision and NLP.
// Both scale to zero nodes when idle, so an idle environment costs no compute. Each cluster
// has a system-assigned identity; platform-access.bicep lets it read the lake and write
// Pipes messages.
param location string
param tags object
param workspaceName string
param cpuClusterName string
param cpuVmSize string

@minValue(1)
param cpuMaxNodes int

param gpuClusterName string
param gpuVmSize string

@minValue(1)
param gpuMaxNodes int

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource cpu 'Microsoft.MachineLearningServices/workspaces/computes@2024-04-01' = {
  parent: workspace
  name: cpuClusterName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    computeType: 'AmlCompute'
    properties: {
      vmSize: cpuVmSize
      vmPriority: 'Dedicated'
      osType: 'Linux'
      remoteLoginPortPublicAccess: 'Disabled'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: cpuMaxNodes
        nodeIdleTimeBeforeScaleDown: 'PT120S'
      }
    }
  }
}

resource gpu 'Microsoft.MachineLearningServices/workspaces/computes@2024-04-01' = {
  parent: workspace
  name: gpuClusterName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    computeType: 'AmlCompute'
    properties: {
      vmSize: gpuVmSize
      vmPriority: 'Dedicated'
      osType: 'Linux'
      remoteLoginPortPublicAccess: 'Disabled'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: gpuMaxNodes
        nodeIdleTimeBeforeScaleDown: 'PT120S'
      }
    }
  }
}

output cpuClusterName string = cpu.name
output gpuClusterName string = gpu.name
output principalIds array = [
  cpu.identity.principalId
  gpu.identity.principalId
]
