"""Monitoring and events for the classical model, with a real endpoint and Dagster instance.

Protects: traffic sent to the scoring server becomes the day's inference log;
an unshifted held-out day shows no drift and requests no retrain; a day
shifted on purpose drifts in the shifted columns, with verdicts equal to
Evidently's on the same data, and the sensor requests exactly one retrain;
ground truth dropped later gives the day's performance; budget thresholds
notify once each and pause training at 100%; a latency breach scales the
endpoint out and an idle endpoint scales back in. The tests share one lifecycle
(module fixture) and run in file order.
"""

from __future__ import annotations

import json
import time
import uuid

import dagster as dg
import httpx
import pandas as pd
import pytest

from mlops_assets.monitoring.stage import inference_log_path
from mlops_assets.platform.cost_ledger import COST_LEDGER_KEY
from mlops_assets.scenarios.classical import SPEC
from mlops_assets.scenarios.classical.features import (
    DRIFT_CATEGORICAL as CATEGORICAL,
)
from mlops_assets.scenarios.classical.features import (
    DRIFT_NUMERICAL as NUMERIC,
)
from mlops_assets.scenarios.classical.features import build_features
from mlops_assets.scenarios.classical.source import flights_for_day
from mlops_core.governance.decisions import record_decision
from mlops_core.probes import azureml_payload
from resources.clock import Clock
from resources.notify import OutboxNotifier
from sensors.budget import budget_sensor
from sensors.drift import build_drift_sensor
from sensors.infra import build_infra_sensor
from tests.conftest import make_stores, stop_endpoints
from tests.helpers import QUIET, defs_with, metadata, train

CLEAN_DAY, DRIFT_DAY = "2013-02-26", "2013-03-05"
# Time-dependent decisions (budget month, pause, cooldown) read this pinned clock, never today.
BUDGET_MONTH = "2031-05"
CLOCK = Clock(frozen_at="2031-05-20T12:00:00+00:00")
world_cursor: dict = {}  # the drift sensor's cursor, carried from one test to the next


@pytest.fixture(scope="module")
def world(tmp_path_factory, landed):
    home = tmp_path_factory.mktemp("monitoring") / "mlops"
    resources = make_stores(home, landed[0])
    resources["notifier"] = OutboxNotifier(outbox_path=str(home / "outbox.jsonl"))
    with dg.instance_for_test() as instance:
        defs = defs_with(resources)
        assert train(defs, instance).success
        record_decision(
            resources["registry"], resources["governance"], SPEC.model_name, "1", "priya",
            "approve", "monitoring test",
        )  # fmt: skip
        promote = defs.resolve_job_def("classical_promotion_job").execute_in_process(
            instance=instance, run_config=QUIET
        )
        assert promote.success
        yield resources, defs, instance
    stop_endpoints(resources)


def send_day(resources, frame: pd.DataFrame, day: str, batch: int = 25) -> dict[str, list]:
    """Score `frame` through the production endpoint as traffic of `day`; labels by request."""
    endpoints, truth = resources["endpoints"], {}
    info = endpoints.get(SPEC.online_endpoint)
    key = endpoints.get_keys(SPEC.online_endpoint)["primary"]
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(frame), batch):
            chunk = frame.iloc[start : start + batch]
            rid = uuid.uuid4().hex
            response = client.post(
                info.scoring_uri,
                json=azureml_payload(SPEC.request_frame(chunk)),
                headers={"Authorization": f"Bearer {key}", "x-request-id": rid,
                         "x-mlops-event-date": day},
            )  # fmt: skip
            assert response.status_code == 200, response.text
            truth[rid] = chunk["late"].tolist()
    return truth


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """The same flights, shifted on purpose: longer routes, all six hours later."""
    return frame.assign(
        distance=frame["distance"] * 1.8,
        dep_hour=(frame["dep_hour"] + 6).clip(upper=23),
        sched_arr_hour=(frame["sched_arr_hour"] + 6).clip(upper=23),
    )


def monitor(defs, instance, day: str):
    return defs.resolve_job_def("classical_monitoring_job").execute_in_process(
        instance=instance, partition_key=day, run_config=QUIET
    )


def evidently_verdicts(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, bool]:
    from evidently.legacy.metric_preset import DataDriftPreset
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report

    report = Report(metrics=[DataDriftPreset()])
    report.run(
        reference_data=reference[NUMERIC + CATEGORICAL],
        current_data=current[NUMERIC + CATEGORICAL],
        column_mapping=ColumnMapping(numerical_features=NUMERIC, categorical_features=CATEGORICAL),
    )
    for metric in report.as_dict()["metrics"]:
        if "drift_by_columns" in metric["result"]:
            cols = metric["result"]["drift_by_columns"]
            return {c: bool(v["drift_detected"]) for c, v in cols.items()}
    raise AssertionError("no drift_by_columns in Evidently's report")


def drift_sensor_requests(resources, instance, cursor=None):
    sensor = build_drift_sensor(SPEC, "classical_training_job")
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "governance": resources["governance"],
            "notifier": resources["notifier"],
            "clock": CLOCK,
        },
    ) as ctx:
        result = sensor(ctx)
    return list(getattr(result, "run_requests", None) or []), result.cursor


def test_clean_day_logs_traffic_and_requests_no_retrain(world):
    resources, defs, instance = world
    clean = build_features(flights_for_day(CLEAN_DAY))
    truth = send_day(resources, clean, CLEAN_DAY)
    resources["lake"].write_bytes(
        "landing/classical/labels/clean.jsonl",
        "\n".join(json.dumps({"request_id": k, "labels": v}) for k, v in truth.items()).encode(),
    )
    result = monitor(defs, instance, CLEAN_DAY)
    assert result.success
    log = resources["lake"].read_parquet(inference_log_path("classical", CLEAN_DAY))
    assert len(log) == len(clean) and log["request_id"].nunique() == len(truth)
    assert set(log["model_version"]) == {"1"}
    drift = metadata(result, "data_drift")
    assert drift["dataset_drift"] is False
    perf = metadata(result, "model_performance")
    assert perf["labeled_rows"] == len(clean)
    assert 0.5 < perf["accuracy"] <= 1.0 and "accuracy_drop" in perf
    requests, cursor = drift_sensor_requests(resources, instance)
    assert requests == []
    world_cursor["after_clean"] = cursor


def test_shifted_day_drifts_like_evidently_and_requests_one_retrain(world):
    resources, defs, instance = world
    current = shifted(build_features(flights_for_day(DRIFT_DAY)))
    send_day(resources, current, DRIFT_DAY)
    result = monitor(defs, instance, DRIFT_DAY)
    assert result.success
    drift = metadata(result, "data_drift")
    assert drift["dataset_drift"] is True
    assert {"distance", "dep_hour", "sched_arr_hour"} <= set(drift["drifted_features"])
    assert drift["evidently_report"].endswith(".html")

    log = resources["lake"].read_parquet(inference_log_path("classical", DRIFT_DAY))
    reference = resources["lake"].read_parquet(SPEC.train_path)
    expected = evidently_verdicts(reference, log)
    ours = {c: c in drift["drifted_features"] for c in NUMERIC + CATEGORICAL}
    assert ours == expected

    requests, cursor = drift_sensor_requests(resources, instance, world_cursor["after_clean"])
    assert len(requests) == 1
    assert requests[0].run_key == f"retrain-classical-{DRIFT_DAY}-v1"
    assert requests[0].tags["mlops/drift_day"] == DRIFT_DAY
    again, _ = drift_sensor_requests(resources, instance, cursor)
    assert again == []  # the same event never requests a second run
    outbox = resources["notifier"].read_outbox()
    assert [n["topic"] for n in outbox] == ["retrain"]


def test_budget_thresholds_notify_once_each_and_pause_training(world):
    resources, defs, instance = world
    governance, notifier = resources["governance"], resources["notifier"]
    ledger = defs.resolve_job_def("platform_monitoring_job").execute_in_process(
        instance=instance, run_config=QUIET
    )
    assert ledger.success and metadata(ledger, "cost_ledger")["ledger_rows"] > 0

    def report(pct: float) -> list[int]:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                COST_LEDGER_KEY,
                metadata={
                    "month": BUDGET_MONTH,
                    "pct_of_budget": pct,
                    "month_cost": pct / 4,
                    "monthly_budget": 25.0,
                    "currency": "USD",
                    "thresholds": dg.MetadataValue.json([50, 80, 100]),
                },
            )
        )
        before = len(notifier.read_outbox())
        with dg.build_sensor_context(
            instance=instance,
            cursor=state.get("cursor"),
            resources={"governance": governance, "notifier": notifier},
        ) as ctx:
            result = budget_sensor(ctx)
        state["cursor"] = getattr(result, "cursor", None) or state.get("cursor")
        return [n["facts"]["pct_of_budget"] for n in notifier.read_outbox()[before:]]

    state: dict = {}
    assert report(30.0) == []
    assert report(55.0) == [55.0]
    assert report(60.0) == []
    assert report(85.0) == [85.0]
    assert governance.paused_reason(CLOCK.now()) is None
    assert report(101.0) == [101.0]
    assert "budget" in governance.paused_reason(CLOCK.now())
    # the pause ends with the month
    assert governance.paused_reason(Clock(frozen_at="2031-06-01T00:00:00+00:00").now()) is None
    assert report(120.0) == []
    # paused: the drift sensor holds retrains
    requests, _ = drift_sensor_requests(resources, instance)
    assert requests == []
    governance.resume("priya", "budget raised")
    assert governance.paused_reason(CLOCK.now()) is None


def test_latency_breach_scales_out_then_idle_scales_back_in(world):
    resources, defs, instance = world
    endpoints, notifier = resources["endpoints"], resources["notifier"]
    sensor = build_infra_sensor(SPEC, max_workers=3)
    sensor_resources = {
        "endpoints": endpoints,
        "governance": resources["governance"],
        "notifier": notifier,
    }
    job = defs.resolve_job_def("classical_endpoint_health_job")
    op = "classical__endpoint_health"

    def health_then_sensor(
        config: dict, cursor: str | None, traffic: bool = True
    ) -> tuple[dict, str | None]:
        if traffic:
            send_day(resources, build_features(flights_for_day(CLEAN_DAY)).head(300), CLEAN_DAY)
        result = job.execute_in_process(
            instance=instance, run_config={**QUIET, "ops": {op: {"config": config}}}
        )
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=sensor_resources
        ) as ctx:
            outcome = sensor(ctx)
        return metadata(result, "endpoint_health"), outcome.cursor

    assert endpoints.get(SPEC.online_endpoint).workers == 1
    health, cursor = health_then_sensor({"slo_p99_ms": 0.001}, None)
    assert health["breaches"] and "SLO" in health["breaches"][0]
    assert endpoints.get(SPEC.online_endpoint).workers == 2
    assert score_ok(resources)

    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=sensor_resources
    ) as ctx:
        assert "no new" in sensor(ctx).skip_message  # one health result, one action

    # The load is gone. A first look covers the new worker's start-up CPU; the next
    # window is quiet, and that is the one the sensor acts on.
    job.execute_in_process(instance=instance, run_config=QUIET)
    time.sleep(2)
    health, cursor = health_then_sensor({}, cursor, traffic=False)
    assert health["breaches"] == [] and health["underloaded"] is True
    assert endpoints.get(SPEC.online_endpoint).workers == 1
    scaled = resources["governance"].audit().read(action="scale", newest_first=False)
    assert [(r["details"]["from"], r["details"]["to"]) for r in scaled] == [(1, 2), (2, 1)]
    infra = [n for n in notifier.read_outbox() if n["topic"] == "infra"]
    assert [n["facts"]["to"] for n in infra] == [2, 1]


def score_ok(resources) -> bool:
    holdout = resources["lake"].read_parquet(SPEC.holdout_path)
    response = resources["endpoints"].invoke(
        SPEC.online_endpoint, azureml_payload(SPEC.request_frame(holdout.head(3)))
    )
    return response.status_code == 200
