"""The day's label rate against recent history: an anomaly check, as pure functions.

The label is "arrived more than 15 minutes late" (`features.LABEL`). A day
whose late share is far outside the recent days' (mean +- k standard
deviations over the previous validated days, with a minimum history) is
suspicious: a feed that marks every flight late, or none, still passes every
per-row check. Real weather does this too (2013-03-08, a snowstorm, had 79%
late against a ~20% month), which is why the asset's default policy for this
check is to warn, not to block. History is the rate each validated day had when
it was validated (recorded with its content hash), so no file is re-read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from mlops_assets.scenarios.classical.features import LATE_MINUTES


@dataclass(frozen=True)
class LabelRateRule:
    sigmas: float = 3.0
    history_days: int = 28
    min_history: int = 14
    min_std: float = 0.02
    """A floor on the spread, so a run of near-identical days does not flag noise."""


def history_days(day: str, rule: LabelRateRule) -> list[str]:
    """The calendar days whose validated rates form `day`'s history, oldest first."""
    end = date.fromisoformat(day)
    return [(end - timedelta(days=n)).isoformat() for n in range(rule.history_days, 0, -1)]


def check_label_rate(
    rate: float | None, history: Mapping[str, float], rule: LabelRateRule
) -> list[str]:
    """A problem when `rate` is outside mean +- sigmas*std of `history` (day -> rate)."""
    if rate is None or len(history) < rule.min_history:
        return []
    values = np.array(list(history.values()), dtype=float)
    mean, std = float(values.mean()), max(float(values.std(ddof=1)), rule.min_std)
    low, high = mean - rule.sigmas * std, mean + rule.sigmas * std
    if low <= rate <= high:
        return []
    return [
        f"label rate (share of arrivals more than {LATE_MINUTES} min late) is {rate:.3f}, "
        f"outside {mean:.3f} +- {rule.sigmas:g}x{std:.3f} = [{low:.3f}, {high:.3f}] "
        f"of the {len(values)} previous validated days ({min(history)}..{max(history)})"
    ]
