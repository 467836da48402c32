"""One validation per raw file per process: the landing's raw and validated steps share it.

`raw_flights` validates each day to report its checks, then `validated_flights` validates
the same bytes before writing typed data. Steps run in the run's process (the code
location's `in_process_executor`), so the second one is a lookup here. The key is the
bytes' sha256, the day, the label-rate history the check used and the rule: a changed
file, a newly validated neighbour day or another rule validates anew. Bounded, first in
first out; a process without the entry (another executor) simply validates again.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mlops_assets.scenarios.classical import schema
from mlops_assets.scenarios.classical.validated_store import RateHistory

if TYPE_CHECKING:
    import pandas as pd

MAX_ENTRIES = 400  # a year of days, and then some

_memo: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()


def validated_once(
    data: bytes,
    day: str,
    history: Mapping[str, float],
    rule: object,
    validate: Callable[[bytes], tuple[Any, Any]],
) -> tuple[Any, Any]:
    """`validate(data)` -> (frame or None, report), computed once per distinct input; the
    frame handed out is a copy, so a caller cannot change what the next one gets."""
    key = (hashlib.sha256(data).hexdigest(), day, tuple(sorted(history.items())), repr(rule))
    if key not in _memo:
        _memo[key] = validate(data)
        while len(_memo) > MAX_ENTRIES:
            _memo.popitem(last=False)
    frame, report = _memo[key]
    return (None if frame is None else frame.copy()), report


def report_for(
    data: bytes, day: str, history: RateHistory
) -> tuple[pd.DataFrame | None, schema.ValidationReport]:
    """One day's raw bytes parsed and validated against its label-rate history."""
    rates = history.before(day)

    def validate(raw: bytes) -> tuple[pd.DataFrame | None, schema.ValidationReport]:
        frame, error = schema.read_raw(raw)
        if frame is None:
            return None, schema.unreadable_report(error or "unreadable")
        return frame, schema.validate_flights(frame, day, rates, history.rule)

    return validated_once(data, day, rates, history.rule, validate)
