"""Resources: one interface per external system, each with a local and an Azure implementation.

Assets and sensors annotate the abstract base (`DataLake`, `ModelRegistry`,
`TrainingCompute`); `resources.env.resources_for(env)` is the one place that
picks the implementation for an environment.
"""
