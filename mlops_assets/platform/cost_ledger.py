"""Platform-wide monitoring assets (key prefix `platform`): the cost ledger.

`cost_ledger` prices finished Dagster runs and online-endpoint uptime with the
rate card (`rate_card.yaml`) and appends them to an append-only ledger in the
lake. Its metadata is a `CostSummary` (month total, percent of the monthly
budget, thresholds), which the budget sensor reads back typed, plus display
extras (cost by kind, ledger size) that nobody reads back.
"""

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets import naming
from mlops_core.monitoring.cost import (
    COLUMNS,
    RateCard,
    endpoint_entries,
    month_of,
    month_summary,
    run_entries,
)
from mlops_core.results import CostSummary
from resources.clock import Clock
from resources.endpoint import OnlineEndpoints
from resources.lake import DataLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

PLATFORM = "platform"
LEDGER_PATH = "monitoring/platform/cost_ledger.parquet"
COST_LEDGER_KEY = dg.AssetKey([PLATFORM, "cost_ledger"])
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


class CostConfig(dg.Config):
    rate_card_path: str = ""
    """Empty: the packaged rate card."""


def read_ledger(lake: DataLake) -> "pd.DataFrame":
    import pandas as pd

    return (
        lake.read_parquet(LEDGER_PATH)
        if lake.exists(LEDGER_PATH)
        else pd.DataFrame(columns=COLUMNS)
    )


@dg.asset(
    key=COST_LEDGER_KEY,
    group_name=naming.MONITORING,
    kinds={"pandas", "parquet"},
    owners=naming.OWNERS,
    tags=naming.scenario_tags(PLATFORM),
)
def cost_ledger(
    context: dg.AssetExecutionContext,
    config: CostConfig,
    lake: DataLake,
    endpoints: OnlineEndpoints,
    clock: Clock,
) -> dg.MaterializeResult:
    """What runs and endpoints cost, priced by the rate card, against the monthly budget."""
    import pandas as pd

    card = RateCard.load(config.rate_card_path or None)
    now = clock.now()
    ledger = read_ledger(lake)
    seen = {item.split(":", 1)[1] for item in ledger["item"] if str(item).count(":")}
    last = pd.Timestamp(ledger["ts"].max()).to_pydatetime() if len(ledger) else None
    records = context.instance.get_run_records(dg.RunsFilter(statuses=FINISHED), limit=5000)
    runs = [
        {"run_id": r.dagster_run.run_id, "job": r.dagster_run.job_name,
         "start": r.start_time, "end": r.end_time}
        for r in records
    ]  # fmt: skip
    live = [
        {"name": e.name, "started": e.extra["started"], "workers": e.workers}
        for e in endpoints.list()
        if e.running and e.extra.get("started")
    ]
    new = run_entries(runs, seen, card, now) + endpoint_entries(live, last, card, now)
    if new:
        fresh = pd.DataFrame(new, columns=COLUMNS)
        # pandas deprecates concatenating an empty frame (it would drop its dtypes)
        ledger = pd.concat([ledger, fresh], ignore_index=True) if len(ledger) else fresh
        ledger["ts"] = pd.to_datetime(ledger["ts"], utc=True)
        lake.write_parquet(LEDGER_PATH, ledger)
    summary = month_summary(ledger, month_of(now), card)
    context.log.info(
        f"{summary['month']}: {summary['month_cost']:.2f} {card.currency} "
        f"= {summary['pct_of_budget']:.1f}% of {card.monthly_budget}"
    )
    cost = CostSummary(
        month=summary["month"],
        month_cost=summary["month_cost"],
        monthly_budget=summary["monthly_budget"],
        pct_of_budget=summary["pct_of_budget"],
        currency=card.currency,
        thresholds=tuple(card.thresholds),
    )
    return dg.MaterializeResult(
        metadata={
            **cost.to_metadata(),
            "by_kind": dg.MetadataValue.json(summary["by_kind"]),
            "new_entries": len(new),
            "ledger_rows": len(ledger),
        }
    )


platform_monitoring_job = dg.define_asset_job(
    "platform_monitoring_job",
    selection=dg.AssetSelection.assets(COST_LEDGER_KEY),
    tags=naming.scenario_tags(PLATFORM),
)
