"""Software-defined assets and checks of the MLOps v2 lifecycle, by lifecycle stage.

`definitions.py` assembles them; generic stages (train, evaluate, register) are
built per scenario from a `ScenarioSpec` by `factory.py`.
"""
