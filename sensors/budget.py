"""Budget sensor: notify at each threshold of the monthly budget once; at 100% pause training.

Reads the latest `platform/cost_ledger` materialization (month, percent of
budget, thresholds). The cursor remembers which thresholds fired in which
month, so each notifies once a month. Reaching 100% pauses training
automation (the drift sensor's retrains) until the first day of next month;
a person lifts it earlier with `Governance.resume` (audited).
"""

import json
from datetime import UTC, datetime

import dagster as dg

from mlops_assets.platform.cost_ledger import COST_LEDGER_KEY
from mlops_core.monitoring.cost import crossed_thresholds
from resources.governance import Governance
from resources.notify import Notifier


def next_month(month: str) -> datetime:
    year, mon = (int(x) for x in month.split("-"))
    return datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)


@dg.sensor(
    name="platform_budget_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Notify at 50/80/100% of the monthly budget (once each); pause training at 100%.",
)
def budget_sensor(context: dg.SensorEvaluationContext, governance: Governance, notifier: Notifier):
    event = context.instance.get_latest_materialization_event(COST_LEDGER_KEY)
    if event is None or event.asset_materialization is None:
        return dg.SkipReason("no cost ledger yet")
    meta = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    cursor = json.loads(context.cursor) if context.cursor else {}
    month, pct = str(meta["month"]), float(meta["pct_of_budget"])
    fired = cursor.get(month, [])
    new = crossed_thresholds(pct, tuple(meta["thresholds"]), fired)
    if not new:
        return dg.SkipReason(f"{month}: {pct:.1f}% of budget, no new threshold")
    for threshold in new:
        notifier.notify(
            topic="budget",
            severity="critical" if threshold >= 100 else "warning",
            title=f"Budget {threshold}% reached for {month}",
            text=f"{meta['month_cost']:.2f} {meta['currency']} of {meta['monthly_budget']:.2f} "
            f"spent ({pct:.1f}%)."
            + (" Training automation is paused until next month." if threshold >= 100 else ""),
            facts={"month": month, "pct_of_budget": round(pct, 1)},
            audience="project-lead",
        )
    if max(new) >= 100:
        governance.pause(
            next_month(month),
            f"monthly budget reached ({pct:.1f}%)",
            actor="platform_budget_sensor",
        )
    cursor = {month: sorted({*fired, *new})}  # older months are done with
    return dg.SensorResult(
        skip_reason=dg.SkipReason(f"notified thresholds {new} for {month}"),
        cursor=json.dumps(cursor),
    )
