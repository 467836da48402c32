"""Software-defined assets and checks of the MLOps v2 lifecycle, by lifecycle stage.

`definitions.py` assembles them; generic stages (train, evaluate, register) are
built per scenario from a `ScenarioSpec` by `factory.py`.
"""

import warnings

import dagster as dg

# Chosen knowingly: single-run backfills land or score a partition range in one process.
# The parameter is beta in Dagster 1.13; say so once in the docs, not 100 times in a log.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
