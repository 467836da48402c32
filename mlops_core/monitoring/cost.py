"""Cost ledger arithmetic, with no Dagster import.

Entries are priced CPU-seconds: Dagster runs (wall time x 1 CPU, an upper
bound for our single-threaded steps) and online endpoints (uptime x workers).
The ledger is append-only; each update adds only what happened since the
previous one, so re-running an update never double-counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

RATE_CARD_PATH = Path(__file__).with_name("rate_card.yaml")
COLUMNS = ["ts", "month", "kind", "item", "seconds", "units", "cost"]


@dataclass(frozen=True)
class RateCard:
    currency: str
    cpu_hour: float
    endpoint_worker_hour: float
    monthly_budget: float
    thresholds: tuple[int, ...]

    @classmethod
    def load(cls, path: str | Path | None = None) -> RateCard:
        raw = yaml.safe_load(Path(path or RATE_CARD_PATH).read_text())
        card = cls(
            currency=str(raw["currency"]),
            cpu_hour=float(raw["cpu_hour"]),
            endpoint_worker_hour=float(raw["endpoint_worker_hour"]),
            monthly_budget=float(raw["monthly_budget"]),
            thresholds=tuple(sorted(int(t) for t in raw["thresholds"])),
        )
        if card.monthly_budget <= 0 or card.cpu_hour < 0 or card.endpoint_worker_hour < 0:
            raise ValueError(f"rate card {path or RATE_CARD_PATH}: prices >= 0, budget > 0")
        return card


def month_of(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m")


def run_entries(runs: list[dict], seen: set[str], card: RateCard, now: datetime) -> list[dict]:
    """Ledger rows for finished runs not yet in the ledger: {run_id, job, start, end}."""
    rows = []
    for run in runs:
        if run["run_id"] in seen or run.get("end") is None or run.get("start") is None:
            continue
        seconds = max(0.0, run["end"] - run["start"])
        rows.append(
            {
                "ts": now,
                "month": month_of(datetime.fromtimestamp(run["end"], UTC)),
                "kind": "run",
                "item": f"{run['job']}:{run['run_id']}",
                "seconds": seconds,
                "units": 1,
                "cost": seconds / 3600 * card.cpu_hour,
            }
        )
    return rows


def endpoint_entries(
    endpoints: list[dict], last_update: datetime | None, card: RateCard, now: datetime
) -> list[dict]:
    """Ledger rows for endpoint uptime since the last update: {name, started, workers}."""
    rows = []
    for ep in endpoints:
        started = datetime.fromtimestamp(ep["started"], UTC)
        since = max(started, last_update) if last_update else started
        seconds = max(0.0, (now - since).total_seconds())
        if seconds == 0:
            continue
        rows.append(
            {
                "ts": now,
                "month": month_of(now),
                "kind": "endpoint",
                "item": ep["name"],
                "seconds": seconds,
                "units": int(ep["workers"]),
                "cost": seconds / 3600 * ep["workers"] * card.endpoint_worker_hour,
            }
        )
    return rows


def month_summary(ledger: pd.DataFrame, month: str, card: RateCard) -> dict:
    this = ledger[ledger["month"] == month] if len(ledger) else ledger
    total = float(this["cost"].sum()) if len(this) else 0.0
    by_kind = this.groupby("kind")["cost"].sum().to_dict() if len(this) else {}
    return {
        "month": month,
        "month_cost": total,
        "monthly_budget": card.monthly_budget,
        "pct_of_budget": 100.0 * total / card.monthly_budget,
        "currency": card.currency,
        "by_kind": {k: float(v) for k, v in by_kind.items()},
    }


def crossed_thresholds(pct: float, thresholds: tuple[int, ...], fired: list[int]) -> list[int]:
    """Thresholds reached now that were not notified yet this month."""
    return [t for t in thresholds if pct >= t and t not in fired]
