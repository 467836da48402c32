"""Budget alert: the run that acts when the budget sensor sees a threshold reached.

The budget sensor (`sensors/budget.py`) reads the cost ledger's `CostSummary`
and requests one run per threshold and month (run key
`budget-<month>-<threshold>`); this run does the acting, so a tick never
notifies or pauses anything. At 100% it first pauses training automation until
the first day of next month (audited; a person lifts it earlier with
`Governance.resume`), then notifies: a notifier outage fails the run loudly
but never leaves the budget unguarded.
"""

from datetime import UTC, datetime

import dagster as dg

from mlops_assets import naming
from mlops_assets.platform.cost_ledger import COST_LEDGER_KEY, PLATFORM
from mlops_core.naming import BUDGET_ALERT_JOB
from resources.governance import Governance
from resources.notify import Notifier

BUDGET_ALERT_KEY = dg.AssetKey([PLATFORM, "budget_alert"])
"""Requested by name from sensors/budget.py, which may not import this module."""
PAUSE_AT = 100


class BudgetAlertConfig(dg.Config):
    month: str
    threshold: int
    """The percent of the monthly budget reached (one run per threshold and month)."""
    pct: float
    month_cost: float
    monthly_budget: float
    currency: str


def next_month(month: str) -> datetime:
    """Midnight UTC on the first day of the month after `month` (YYYY-MM)."""
    year, mon = (int(x) for x in month.split("-"))
    return datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)


@dg.asset(
    key=BUDGET_ALERT_KEY,
    deps=[COST_LEDGER_KEY],
    group_name=naming.MONITORING,
    kinds={"python"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(PLATFORM),
)
def budget_alert(
    context: dg.AssetExecutionContext,
    config: BudgetAlertConfig,
    governance: Governance,
    notifier: Notifier,
) -> dg.MaterializeResult:
    """The last budget threshold reached this month, told to the project lead."""
    pausing = config.threshold >= PAUSE_AT
    until = next_month(config.month)
    if pausing:
        governance.pause(
            until, f"monthly budget reached ({config.pct:.1f}%)", actor="platform_budget_alert"
        )
        context.log.warning(f"training automation paused until {until.isoformat()}")
    notifier.notify(
        topic="budget",
        severity="critical" if pausing else "warning",
        title=f"Budget {config.threshold}% reached for {config.month}",
        text=f"{config.month_cost:.2f} {config.currency} of {config.monthly_budget:.2f} "
        f"spent ({config.pct:.1f}%)."
        + (" Training automation is paused until next month." if pausing else ""),
        facts={"month": config.month, "pct_of_budget": round(config.pct, 1)},
        audience="project-lead",
    )
    return dg.MaterializeResult(
        metadata={
            "month": config.month,
            "threshold": config.threshold,
            "pct_of_budget": config.pct,
            "training_paused_until": until.isoformat() if pausing else "",
        }
    )


budget_alert_job = dg.define_asset_job(
    BUDGET_ALERT_JOB,
    selection=dg.AssetSelection.assets(BUDGET_ALERT_KEY),
    description="platform: notify a budget threshold; pause training automation at 100%",
    tags=naming.scenario_tags(PLATFORM),
)
