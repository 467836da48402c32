"""The raw flights contract and its validation, as pure functions.

Every problem names the column and what is wrong with it, so a failed check
in the UI says what to fix. Validation never raises on bad data: it returns
the problems, grouped by the check that reports them. The file's own contract
(schema, nulls, ranges, row count) always blocks a day; the checks against
outside facts (`reference_checks`) and recent history (`label_rate`) act by
policy: `block` or `warn`, chosen on the assets (`DEFAULT_POLICY` otherwise).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mlops_assets.scenarios.classical import reference_checks as ref
from mlops_assets.scenarios.classical.features import label_rate
from mlops_assets.scenarios.classical.label_rate import LabelRateRule, check_label_rate

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

# column -> (kind, nullable); kinds: "int", "float", "str"
COLUMNS: dict[str, tuple[str, bool]] = {
    "year": ("int", False),
    "month": ("int", False),
    "day": ("int", False),
    "dep_time": ("float", True),
    "sched_dep_time": ("int", False),
    "dep_delay": ("float", True),
    "arr_time": ("float", True),
    "sched_arr_time": ("int", False),
    "arr_delay": ("float", True),
    "carrier": ("str", False),
    "flight": ("int", False),
    "tailnum": ("str", True),
    "origin": ("str", False),
    "dest": ("str", False),
    "air_time": ("float", True),
    "distance": ("int", False),
    "hour": ("int", False),
    "minute": ("int", False),
    "time_hour": ("str", False),
    "temp": ("float", True),
    "humid": ("float", True),
    "wind_speed": ("float", True),
    "precip": ("float", True),
    "pressure": ("float", True),
    "visib": ("float", True),
}

RANGES: dict[str, tuple[float, float]] = {
    "month": (1, 12),
    "day": (1, 31),
    "sched_dep_time": (0, 2359),
    "sched_arr_time": (0, 2359),
    "dep_delay": (-180, 2000),
    "arr_delay": (-180, 2000),
    "distance": (1, 6000),
    "hour": (0, 23),
    "minute": (0, 59),
    "temp": (-40, 120),
    "humid": (0, 100),
    "wind_speed": (0, 200),
    "precip": (0, 10),
    "pressure": (900, 1100),
    "visib": (0, 10),
}
ORIGINS = frozenset({"EWR", "JFK", "LGA"})
MIN_ROWS, MAX_ROWS = 100, 5000

CONTRACT_CHECKS = ("schema", "nulls", "ranges", "row_count")
DEFAULT_POLICY: dict[str, str] = {
    "reference_codes": "block",
    "physical_ranges": "block",
    "timestamps": "block",
    "label_rate": "warn",
}
CHECKS = (*CONTRACT_CHECKS, *DEFAULT_POLICY)


@dataclass
class ValidationReport:
    rows: int = 0
    problems: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CHECKS})

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def all_problems(self) -> list[str]:
        return [f"{check}: {p}" for check, items in self.problems.items() for p in items]

    def blocking(self, policy: Mapping[str, str] = DEFAULT_POLICY) -> list[str]:
        """Problems of the checks that block under `policy` (the contract always does)."""
        return self._where(policy, blocking=True)

    def warnings(self, policy: Mapping[str, str] = DEFAULT_POLICY) -> list[str]:
        """Problems of the checks that only warn under `policy`."""
        return self._where(policy, blocking=False)

    def _where(self, policy: Mapping[str, str], blocking: bool) -> list[str]:
        return [
            f"{check}: {p}"
            for check, items in self.problems.items()
            if blocks(check, policy) == blocking
            for p in items
        ]


def blocks(check: str, policy: Mapping[str, str] = DEFAULT_POLICY) -> bool:
    """Whether a failure of `check` stops the day: always for the contract, else by policy."""
    if check in CONTRACT_CHECKS:
        return True
    mode = policy.get(check, DEFAULT_POLICY[check])
    if mode not in ("block", "warn"):
        raise ValueError(f"policy for check '{check}' must be 'block' or 'warn', got {mode!r}")
    return mode == "block"


def _kind_ok(series: pd.Series, kind: str) -> bool:
    import pandas as pd

    if kind == "int":
        return pd.api.types.is_integer_dtype(series)
    if kind == "float":
        return pd.api.types.is_float_dtype(series) or pd.api.types.is_integer_dtype(series)
    return pd.api.types.is_string_dtype(series) or (
        series.dtype == object and series.dropna().map(type).eq(str).all()
    )


def read_raw(data: bytes) -> tuple[pd.DataFrame | None, str | None]:
    """Parse a raw partition file; a garbage file gives an error message instead of raising."""
    import pandas as pd

    try:
        return pd.read_parquet(io.BytesIO(data)), None
    except Exception as err:  # any parse failure is the file's fault, not ours
        return None, f"file is not readable parquet ({type(err).__name__}: {err})"[:300]


def validate_flights(
    df: pd.DataFrame,
    day: str | None = None,
    history: Mapping[str, float] | None = None,
    rule: LabelRateRule | None = None,
) -> ValidationReport:
    """Check one day of flights: its contract, reference codes, physical ranges, timestamps,
    and its label rate against `history` (previous validated days -> their rate)."""
    report = ValidationReport(rows=len(df))
    typed_ok: list[str] = []
    for col, (kind, _) in COLUMNS.items():
        if col not in df.columns:
            report.problems["schema"].append(f"missing column '{col}'")
        elif not _kind_ok(df[col], kind):
            report.problems["schema"].append(
                f"column '{col}' has type {df[col].dtype}, expected {kind}"
            )
        else:
            typed_ok.append(col)
    extra = sorted(set(df.columns) - set(COLUMNS))
    if extra:
        report.problems["schema"].append(f"unexpected columns {extra}")

    for col in typed_ok:
        nullable = COLUMNS[col][1]
        n_null = int(df[col].isna().sum())
        if not nullable and n_null:
            report.problems["nulls"].append(f"column '{col}' has {n_null} nulls, none allowed")
        if COLUMNS[col][0] == "float" and np.isinf(df[col].to_numpy(dtype=float)).any():
            report.problems["ranges"].append(f"column '{col}' has infinite values")

    for col, (lo, hi) in RANGES.items():
        if col in typed_ok:
            values = df[col].dropna()
            bad = values[(values < lo) | (values > hi)]
            if len(bad):
                report.problems["ranges"].append(
                    f"column '{col}' has {len(bad)} values outside [{lo}, {hi}], e.g. {bad.iloc[0]}"
                )
    if "origin" in typed_ok:
        unknown = sorted(set(df["origin"].dropna()) - ORIGINS)
        if unknown:
            report.problems["ranges"].append(f"column 'origin' has unknown airports {unknown[:5]}")
    if day and {"year", "month", "day"} <= set(typed_ok) and len(df):
        y, m, d = (int(x) for x in day.split("-"))
        wrong = int((~((df["year"] == y) & (df["month"] == m) & (df["day"] == d))).sum())
        if wrong:
            report.problems["ranges"].append(
                f"columns 'year/month/day': {wrong} rows are not dated {day} (wrong partition)"
            )

    if not MIN_ROWS <= len(df) <= MAX_ROWS:
        report.problems["row_count"].append(
            f"{len(df)} rows, expected between {MIN_ROWS} and {MAX_ROWS} flights a day"
        )
    report.problems["reference_codes"] += ref.check_reference_codes(df, typed_ok)
    report.problems["physical_ranges"] += ref.check_physical_ranges(df, typed_ok)
    report.problems["timestamps"] += ref.check_timestamps(df, typed_ok)
    if "arr_delay" in typed_ok:
        report.problems["label_rate"] += check_label_rate(
            label_rate(df), history or {}, rule or LabelRateRule()
        )
    return report


def unreadable_report(message: str) -> ValidationReport:
    """Every check fails on a file that cannot be parsed, each saying why."""
    report = ValidationReport()
    for check in CHECKS:
        report.problems[check].append(message)
    return report


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Cast a valid frame to the canonical dtypes and drop exact duplicate rows."""
    casts = {"int": "int64", "float": "float64", "str": "string"}
    out = df[list(COLUMNS)].astype({c: casts[k] for c, (k, _) in COLUMNS.items()})
    return out.drop_duplicates(ignore_index=True)
