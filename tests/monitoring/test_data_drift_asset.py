"""The data_drift asset: its verdict, and the Evidently report it links, say the same thing.

Protects issue #9 items 2 and 8 (monitoring): for a clean and a shifted day, the report the
asset logs to a monitoring run of the dev tracking store is built from the served model's
stored reference profile and all of the day's rows, and its dataset verdict, drifted columns
and prediction verdict (read back from the stored Evidently snapshot and the HTML) equal the
asset's metadata; `report_basis` states that reference and those rows; the link is the MLflow
UI's page of the report when a UI URL is configured, else a path with a note saying so; the
page says which sensor watches the asset and what it does next, and lists the drifted columns.

A small world instead of the full lifecycle: the classical features of Jan 1 - Feb 21 2013 with
a rule as "prediction" (no training), its profile logged as a dev run's drift reference, a prod
version pointing at that run, and inference logs written straight to the lake.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.monitoring.data_drift import (
    REPORT_HTML,
    REPORT_SNAPSHOT,
    build_data_drift,
    watch_note,
)
from mlops_assets.monitoring.inference_log import PREDICTION, inference_log_path
from mlops_assets.scenarios.classical import SPEC
from mlops_assets.scenarios.classical.features import (
    DRIFT_CATEGORICAL,
    DRIFT_NUMERICAL,
    build_features,
)
from mlops_assets.scenarios.classical.source import flights_for_day
from mlops_core.monitoring.drift import build_reference
from mlops_core.results import DriftResult, plain
from mlops_core.spec import LabelingSpec
from resources.lake import LocalLake
from resources.registry import LocalMlflowRegistry
from sensors.drift import COOLDOWN_SECONDS, build_drift_sensor
from tests.monitoring.evidently_compare import parse_snapshot

CLEAN_DAY, DRIFT_DAY = "2013-02-26", "2013-03-05"
SHIFTED = {"distance", "dep_hour", "sched_arr_hour"}
UI_URL = "http://mlflow.test:5000"


def day_features(day: str) -> pd.DataFrame:
    frame = build_features(flights_for_day(day))
    late_or_long = (frame["dep_hour"] >= 17) | (frame["distance"] > 1500)
    return frame.assign(**{PREDICTION: late_or_long.astype("int64")})


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """Longer routes, all six hours later (as tests/test_classical_monitoring.py shifts)."""
    return frame.assign(
        distance=frame["distance"] * 1.8,
        dep_hour=(frame["dep_hour"] + 6).clip(upper=23),
        sched_arr_hour=(frame["sched_arr_hour"] + 6).clip(upper=23),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("data_drift")
    lake = LocalLake(root=str(home / "lake"))
    registry = LocalMlflowRegistry(root=str(home / "mlflow"))
    days = pd.date_range("2013-01-01", "2013-02-21").strftime("%Y-%m-%d")
    train = pd.concat([day_features(d) for d in days], ignore_index=True)
    profile = build_reference(train, DRIFT_NUMERICAL, [*DRIFT_CATEGORICAL, PREDICTION])
    dev = registry.client("dev")
    run = dev.create_run(registry.ensure_experiment(SPEC.model_name, "dev"))
    dev.log_text(run.info.run_id, profile.to_json(), SPEC.monitoring.drift.reference_artifact)
    prod = registry.client("prod")
    prod.create_registered_model(SPEC.model_name)
    prod.create_model_version(
        SPEC.model_name,
        source=f"{run.info.artifact_uri}/model",
        tags={"mlops.source_run_id": run.info.run_id},
    )
    logs = {CLEAN_DAY: day_features(CLEAN_DAY), DRIFT_DAY: shifted(day_features(DRIFT_DAY))}
    for day, frame in logs.items():
        lake.write_parquet(inference_log_path(SPEC.name, day), frame.assign(model_version="1"))
    with dg.instance_for_test() as instance:
        yield {"lake": lake, "registry": registry}, instance, run.info.run_id, logs


def materialize(world, day: str, ui_url: str | None) -> dict:
    resources, instance, _, _ = world
    registry = LocalMlflowRegistry(root=resources["registry"].root, ui_url=ui_url)
    result = dg.materialize(
        [build_data_drift(SPEC)],
        partition_key=day,
        resources={**resources, "registry": registry},
        instance=instance,
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return plain(event.materialization.metadata)


def stored_report(world, run_id: str) -> tuple[dict, str]:
    client = world[0]["registry"].client("dev")
    folder = Path(client.download_artifacts(run_id, ""))
    snapshot = json.loads((folder / REPORT_SNAPSHOT).read_text())
    return snapshot, (folder / REPORT_HTML).read_text()


@pytest.fixture(scope="module")
def pages(world) -> dict[str, dict]:
    """Each day materialized once: the clean day without a UI URL, the shifted day with one."""
    return {
        CLEAN_DAY: materialize(world, CLEAN_DAY, None),
        DRIFT_DAY: materialize(world, DRIFT_DAY, UI_URL),
    }


@pytest.mark.parametrize("day", [CLEAN_DAY, DRIFT_DAY], ids=["clean", "shifted"])
def test_report_says_what_the_verdict_says(world, pages, day):
    meta = pages[day]
    result = DriftResult.from_metadata(meta)
    assert result.dataset_drift is (day == DRIFT_DAY)
    assert set(result.drifted_features) == (SHIFTED if day == DRIFT_DAY else set())

    snapshot, page = stored_report(world, meta["report_run_id"])
    columns, share = parse_snapshot(snapshot)
    features = [*DRIFT_NUMERICAL, *DRIFT_CATEGORICAL]
    assert set(columns) == {*features, PREDICTION}
    assert share == pytest.approx(result.share_of_drifted_features)
    assert (share >= result.drift_share_threshold) is result.dataset_drift
    assert {c for c in features if columns[c]["drifted"]} == set(result.drifted_features)
    assert columns[PREDICTION]["drifted"] is result.prediction_drift
    assert f"Dataset Drift is {'detected' if result.dataset_drift else 'NOT detected'}." in page
    assert meta["report_agrees"] is True


def test_report_basis_states_the_reference_and_rows(world, pages):
    _, _, reference_run, logs = world
    meta = pages[CLEAN_DAY]
    basis = meta["report_basis"]
    assert f"training run `{reference_run}` (served as prod v1)" in basis
    assert f"all {len(logs[CLEAN_DAY]):,} rows the verdict tested" in basis
    assert "the inference log of 2013-02-26, rows scored by prod v1" in basis
    assert "equal the asset's" in basis
    _, page = stored_report(world, meta["report_run_id"])
    assert f"training run {reference_run} (served as prod v1)" in page  # the same statement


def test_link_is_the_mlflow_page_when_a_ui_is_configured(world, pages):
    meta = pages[DRIFT_DAY]
    run = world[0]["registry"].client("dev").get_run(meta["report_run_id"])
    page = LocalMlflowRegistry(root=".", ui_url=UI_URL).run_url(
        run.info.experiment_id, run.info.run_id
    )
    assert meta["evidently_report"] == f"{page}/artifactPath/{REPORT_HTML}"
    assert "evidently_report_note" not in meta


def test_without_a_ui_the_link_is_a_path_and_says_so(pages):
    meta = pages[CLEAN_DAY]
    path = Path(meta["evidently_report"])
    assert path.name == REPORT_HTML and path.is_file()
    assert "No MLflow UI URL is configured" in meta["evidently_report_note"]
    assert meta["report_run_id"] in meta["evidently_report_note"]


def test_page_lists_drifted_columns_and_what_happens_next(pages):
    meta, clean = pages[DRIFT_DAY], pages[CLEAN_DAY]
    listed = {line.split("`")[1] for line in meta["drifted_columns"].splitlines()[2:]}
    assert listed == SHIFTED | ({PREDICTION} if meta["prediction_drift"] else set())
    note = meta["watched_by"]
    assert f"`{build_drift_sensor(SPEC).name}`" in note
    assert f"`{build_drift_sensor(SPEC).job_name}`" in note
    assert f"{COOLDOWN_SECONDS / 3600:g} h" in note
    assert "This day triggers it: 50% of features drifted" in note
    assert isinstance(meta["drift_share_threshold"], str)  # a setting, not a plotted series
    assert clean["drifted_columns"] == "No column drifted."
    assert "This day does not trigger it." in clean["watched_by"]


def test_relabel_specs_name_their_own_sensor_and_job():
    spec = dataclasses.replace(
        SPEC, loopback="relabel", labeling=LabelingSpec("tabular", lambda rows: rows)
    )
    result = DriftResult("2013-03-05", "1", 10, 0.5, 0.5, ("distance",), False, 0.0)
    note = watch_note(spec, result)
    sensor = build_drift_sensor(spec)
    assert f"`{sensor.name}`" in note and f"`{sensor.job_name}`" in note
    assert "labelers" in note and "retrains" not in note
