"""Workspace-decay notice: the run that tells the owner nobody used the workspace for days.

The decay sensor (`sensors/decay.py`) decides (one notice per idle period,
run key `decay-<last run id>`); this run notifies. The sensor does not count
runs of this job as use.
"""

import dagster as dg

from mlops_assets import naming
from mlops_assets.platform.cost_ledger import PLATFORM
from mlops_core.naming import WORKSPACE_DECAY_JOB
from resources.notify import Notifier

DECAY_NOTICE_KEY = dg.AssetKey([PLATFORM, "workspace_decay_notice"])
DECAY_JOB = WORKSPACE_DECAY_JOB
"""Requested by name from sensors/decay.py, which may not import this module."""


class DecayConfig(dg.Config):
    last_run_id: str
    last_run_at: str
    """ISO-8601 creation time of the newest run that counts as use."""
    idle_days: float
    owner: str = "team:ml-platform"


@dg.asset(
    key=DECAY_NOTICE_KEY,
    group_name=naming.MONITORING,
    kinds={"python"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(PLATFORM),
)
def workspace_decay_notice(config: DecayConfig, notifier: Notifier) -> dg.MaterializeResult:
    """The last idle-workspace notice sent to the owner."""
    notifier.notify(
        topic="workspace_decay",
        severity="info",
        title=f"Workspace idle for {config.idle_days:.0f} days",
        text=f"No run since {config.last_run_at[:10]}. Models and data decay when nobody "
        "retrains or monitors them; stop endpoints you no longer need.",
        facts={"last_run": config.last_run_id, "idle_days": round(config.idle_days, 1)},
        audience=config.owner,
    )
    return dg.MaterializeResult(
        metadata={"last_run_id": config.last_run_id, "idle_days": config.idle_days}
    )


workspace_decay_job = dg.define_asset_job(
    DECAY_JOB,
    selection=dg.AssetSelection.assets(DECAY_NOTICE_KEY),
    description="platform: tell the owner the workspace has been idle",
    tags=naming.scenario_tags(PLATFORM),
)
