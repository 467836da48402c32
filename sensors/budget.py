"""Budget sensor: each threshold of the monthly budget requests one alert run per month.

Reads the latest cost ledger result, typed (`CostSummary`: month, percent of
budget, thresholds), and requests the platform budget alert job once per newly
reached threshold (run key `budget-<month>-<threshold>`). The run notifies,
and at 100% pauses training automation until next month; the tick acts on
nothing. The cursor (JSON `{month: [thresholds requested]}`) keeps only the
current month, so each threshold fires once a month.
"""

from __future__ import annotations

import json

import dagster as dg

from mlops_core.monitoring.cost import crossed_thresholds
from mlops_core.naming import BUDGET_ALERT_JOB
from mlops_core.results import CostSummary, ResultError

COST_LEDGER_KEY = dg.AssetKey(["platform", "cost_ledger"])
BUDGET_ALERT_OP = "platform__budget_alert"


@dg.sensor(
    name="platform_budget_sensor",
    job_name=BUDGET_ALERT_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Request a budget alert at 50/80/100% of the monthly budget (once each a month); "
    "the alert at 100% pauses training automation.",
)
def budget_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    event = context.instance.get_latest_materialization_event(COST_LEDGER_KEY)
    if event is None or event.asset_materialization is None:
        return dg.SkipReason("no cost ledger yet")
    try:
        cost = CostSummary.from_metadata(event.asset_materialization.metadata)
    except ResultError as err:
        return dg.SkipReason(f"cost ledger result unreadable: {err}")
    cursor = json.loads(context.cursor) if context.cursor else {}
    fired = cursor.get(cost.month, [])
    new = crossed_thresholds(cost.pct_of_budget, cost.thresholds, fired)
    if not new:
        return dg.SkipReason(f"{cost.month}: {cost.pct_of_budget:.1f}% of budget, no new threshold")
    requests = [
        dg.RunRequest(
            run_key=f"budget-{cost.month}-{threshold}",
            run_config={
                "ops": {
                    BUDGET_ALERT_OP: {
                        "config": {
                            "month": cost.month,
                            "threshold": threshold,
                            "pct": cost.pct_of_budget,
                            "month_cost": cost.month_cost,
                            "monthly_budget": cost.monthly_budget,
                            "currency": cost.currency,
                        }
                    }
                }
            },
            tags={"scenario": "platform", "mlops/trigger": "budget"},
        )
        for threshold in new
    ]
    cursor = {cost.month: sorted({*fired, *new})}  # older months are done with
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))
