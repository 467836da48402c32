"""A landing validates each raw file once; any change to its inputs validates it anew."""

from __future__ import annotations

import pandas as pd

from mlops_assets.scenarios.classical import validation_memo
from mlops_assets.scenarios.classical.label_rate import LabelRateRule


def test_same_input_is_validated_once_and_any_change_validates_again(monkeypatch):
    monkeypatch.setattr(validation_memo, "_memo", validation_memo.OrderedDict())
    calls: list[bytes] = []

    def validate(data: bytes):
        calls.append(data)
        return pd.DataFrame({"x": [1, 2]}), f"report of {data!r}"

    rule, history = LabelRateRule(), {"2013-01-01": 0.2}
    first = validation_memo.validated_once(b"a", "2013-01-02", history, rule, validate)
    again = validation_memo.validated_once(b"a", "2013-01-02", dict(history), rule, validate)
    assert calls == [b"a"] and again[1] == first[1]
    first[0].loc[0, "x"] = 99  # a caller's edit does not reach the next caller
    assert validation_memo.validated_once(b"a", "2013-01-02", history, rule, validate)[0][
        "x"
    ].tolist() == [1, 2]
    validation_memo.validated_once(b"b", "2013-01-02", history, rule, validate)
    validation_memo.validated_once(b"a", "2013-01-02", {**history, "d": 0.9}, rule, validate)
    validation_memo.validated_once(b"a", "2013-01-02", history, LabelRateRule(sigmas=2), validate)
    assert len(calls) == 4


def test_the_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(validation_memo, "_memo", validation_memo.OrderedDict())
    monkeypatch.setattr(validation_memo, "MAX_ENTRIES", 3)
    for i in range(5):
        validation_memo.validated_once(bytes([i]), "d", {}, None, lambda d: (None, d))
    assert len(validation_memo._memo) == 3
