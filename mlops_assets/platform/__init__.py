"""Platform-wide assets (key prefix `platform`): the cost ledger and the runs sensors request.

Besides the cost ledger, the platform holds the assets that act on a platform
sensor's decision (budget alert, workspace-decay notice), so sensors only
decide and every notification or pause happens in a run.
"""

from __future__ import annotations

import dagster as dg

from mlops_assets.platform.budget_alert import budget_alert, budget_alert_job
from mlops_assets.platform.cost_ledger import cost_ledger, platform_monitoring_job
from mlops_assets.platform.workspace_decay import workspace_decay_job, workspace_decay_notice


def build_platform_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[cost_ledger, budget_alert, workspace_decay_notice],
        jobs=[platform_monitoring_job, budget_alert_job, workspace_decay_job],
        schedules=[
            dg.ScheduleDefinition(
                name="platform_cost_schedule",
                job=platform_monitoring_job,
                cron_schedule="*/15 * * * *",
                default_status=dg.DefaultScheduleStatus.STOPPED,
            )
        ],
    )
