"""Features leak nothing from after departure, and the split never looks ahead."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_assets.scenarios.classical.features import (
    DATE,
    FEATURES,
    LABEL,
    build_features,
    split_by_time,
)
from mlops_assets.scenarios.classical.model import build_pipeline, score, score_slices
from mlops_assets.scenarios.classical.source import flights_for_day


@pytest.fixture(scope="module")
def week() -> pd.DataFrame:
    days = [f"2013-07-0{d}" for d in range(1, 8)]
    return build_features(pd.concat([flights_for_day(d) for d in days], ignore_index=True))


def test_no_post_departure_columns_are_features():
    assert not {"dep_delay", "dep_time", "arr_time", "arr_delay", "air_time"} & set(FEATURES)


def test_label_is_arrival_more_than_15_minutes_late():
    raw = flights_for_day("2013-07-01")
    feats = build_features(raw)
    arrived = raw[raw["arr_delay"].notna()]
    assert len(feats) == len(arrived)
    assert feats[LABEL].sum() == int((arrived["arr_delay"] > 15).sum())


def test_split_by_time_holds_out_the_last_days(week):
    train, holdout = split_by_time(week, 2)
    assert train[DATE].max() < holdout[DATE].min()
    assert sorted(holdout[DATE].unique()) == ["2013-07-06", "2013-07-07"]
    assert len(train) + len(holdout) == len(week)


def test_split_refuses_a_holdout_that_leaves_no_training_days(week):
    with pytest.raises(ValueError, match="holdout_days=7"):
        split_by_time(week, 7)


def test_unknown_hyperparameter_is_named():
    with pytest.raises(ValueError, match="max_iterations"):
        build_pipeline({"max_iterations": 5})


def test_model_scores_and_slices_are_fractions(week):
    train, holdout = split_by_time(week, 2)
    model = build_pipeline({"max_iter": 20}).fit(train[FEATURES], train[LABEL])
    metrics = score(model, holdout)
    assert 0.5 < metrics["roc_auc"] <= 1.0
    assert set(score_slices(model, holdout, "origin")) == {"EWR", "JFK", "LGA"}
    # an unseen carrier is encoded as unknown rather than crashing the model
    odd = holdout.head(3).assign(carrier="ZZ")
    assert len(model.predict_proba(odd[FEATURES])) == 3
