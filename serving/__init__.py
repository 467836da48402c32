"""The online endpoint data plane: a scoring server for MLflow models.

It never imports Dagster or the platform's own packages (`mlops_assets`, `resources`,
`sensors`); the control plane tells it what to serve through a JSON config file
(see `serving.settings`). `serving.scoring` holds the framework-free parts that
training and monitoring code may import too.
"""
