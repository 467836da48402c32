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

from mlops_assets.monitoring.inference_log import inference_log_path
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
from mlops_core.probes import azureml_payload
from mlops_core.results import CostSummary, EndpointHealth
from resources.clock import Clock
from resources.notify import OutboxNotifier
from sensors.budget import budget_sensor
from sensors.drift import build_drift_sensor
from sensors.infra import build_infra_sensor
from tests.conftest import make_stores, stop_endpoints
from tests.governance.helpers import approve, governed
from tests.helpers import QUIET, champion_holdout, defs_with, metadata, train
from tests.monitoring.evidently_compare import evidently_drift

CLEAN_DAY, DRIFT_DAY = "2013-02-26", "2013-03-05"
# Time-dependent decisions (budget month, pause, cooldown) read this pinned clock, never today.
BUDGET_MONTH = "2031-05"
CLOCK = Clock(frozen_at="2031-05-20T12:00:00+00:00")
world_cursor: dict = {}  # the drift sensor's cursor, carried from one test to the next


@pytest.fixture(scope="module")
def world(tmp_path_factory, landed):
    home = tmp_path_factory.mktemp("monitoring") / "mlops"
    resources = governed(make_stores(home, landed[0]), home)  # the test policy
    resources["notifier"] = OutboxNotifier(outbox_path=str(home / "outbox.jsonl"))
    with dg.instance_for_test() as instance:
        defs = defs_with(resources)
        assert train(defs, instance).success
        approve(resources, SPEC.model_name, "1", "priya", reason="monitoring test")
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
    keys = endpoints.get_keys(SPEC.online_endpoint)  # replay: may set x-mlops-event-date
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(frame), batch):
            chunk = frame.iloc[start : start + batch]
            rid = uuid.uuid4().hex
            response = client.post(
                info.scoring_uri,
                json=azureml_payload(SPEC.codec.request_batch(chunk)),
                headers={"Authorization": f"Bearer {keys['primary']}", "x-request-id": rid,
                         "x-mlops-event-date": day, "x-mlops-replay-key": keys["replay"]},
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


def drift_sensor_requests(resources, instance, cursor=None):
    sensor = build_drift_sensor(SPEC)
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
    champion = resources["registry"].version_by_alias(SPEC.model_name, "champion", "prod")
    reference = resources["lake"].read_parquet(
        f"{champion.tags['mlops.dataset_root']}/train.parquet"
    )
    columns, _ = evidently_drift(reference, log, NUMERIC, CATEGORICAL)
    ours = {c: c in drift["drifted_features"] for c in NUMERIC + CATEGORICAL}
    assert ours == {c: v["drifted"] for c, v in columns.items()}

    requests, cursor = drift_sensor_requests(resources, instance, world_cursor["after_clean"])
    assert len(requests) == 1
    assert requests[0].run_key == f"retrain-classical-{DRIFT_DAY}-v1"
    assert requests[0].tags["mlops/drift_day"] == DRIFT_DAY
    again, _ = drift_sensor_requests(resources, instance, cursor)
    assert again == []  # the same event never requests a second run
    # the sensor only decides: the notice is sent by the requested run, not by the tick
    assert resources["notifier"].read_outbox() == []
    assert requests[0].tags["mlops/reason"].startswith("data_drift")


def run_requested(defs, instance, sensor, request: dg.RunRequest):
    """Execute the run a sensor requested, as the daemon would launch it."""
    return defs.resolve_job_def(sensor.job_name).execute_in_process(
        instance=instance, run_config={**QUIET, **request.run_config}, tags=request.tags
    )


def test_budget_thresholds_notify_once_each_and_pause_training(world):
    resources, defs, instance = world
    governance, notifier = resources["governance"], resources["notifier"]
    ledger = defs.resolve_job_def("platform_monitoring_job").execute_in_process(
        instance=instance, run_config=QUIET
    )
    assert ledger.success and metadata(ledger, "cost_ledger")["ledger_rows"] > 0
    assert CostSummary.from_metadata(metadata(ledger, "cost_ledger")).thresholds == (50, 80, 100)

    def report(pct: float) -> list[float]:
        """Record a ledger result, tick the sensor, run what it requests; the notified pcts."""
        cost = CostSummary(
            month=BUDGET_MONTH, month_cost=pct / 4, monthly_budget=25.0, pct_of_budget=pct,
            currency="USD", thresholds=(50, 80, 100),
        )  # fmt: skip
        instance.report_runless_asset_event(
            dg.AssetMaterialization(COST_LEDGER_KEY, metadata=cost.to_metadata())
        )
        before = len(notifier.read_outbox())
        with dg.build_sensor_context(instance=instance, cursor=state.get("cursor")) as ctx:
            result = budget_sensor(ctx)
        state["cursor"] = getattr(result, "cursor", None) or state.get("cursor")
        for request in getattr(result, "run_requests", None) or []:
            assert request.run_key.startswith(f"budget-{BUDGET_MONTH}-")
            assert run_requested(defs, instance, budget_sensor, request).success
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
    # paused: the drifted day's retrain stays pending, and is served once a person resumes
    drift = build_drift_sensor(SPEC)
    drift_resources = {"governance": governance, "clock": CLOCK}
    with dg.build_sensor_context(instance=instance, resources=drift_resources) as ctx:
        held = drift(ctx)
    assert not held.run_requests and "paused" in held.skip_reason.skip_message
    governance.resume("priya", "budget raised")
    assert governance.paused_reason(CLOCK.now()) is None
    with dg.build_sensor_context(
        instance=instance, cursor=held.cursor, resources=drift_resources
    ) as ctx:
        served = drift(ctx)
    assert [r.run_key for r in served.run_requests] == [f"retrain-classical-{DRIFT_DAY}-v1"]


def test_latency_breach_scales_out_then_idle_scales_back_in(world):
    resources, defs, instance = world
    endpoints, notifier = resources["endpoints"], resources["notifier"]
    sensor = build_infra_sensor(SPEC, max_workers=3)
    job = defs.resolve_job_def("classical_endpoint_health_job")
    op = "classical__endpoint_health"

    def health(config: dict | None = None, traffic: bool = False) -> EndpointHealth:
        if traffic:
            send_day(resources, build_features(flights_for_day(CLEAN_DAY)).head(300), CLEAN_DAY)
        result = job.execute_in_process(
            instance=instance, run_config={**QUIET, "ops": {op: {"config": config or {}}}}
        )
        return EndpointHealth.from_metadata(metadata(result, "endpoint_health"))

    def decide_and_run(cursor: str | None) -> str:
        """Tick the sensor on the latest health result and run what it requests."""
        with dg.build_sensor_context(instance=instance, cursor=cursor) as ctx:
            outcome = sensor(ctx)
        (request,) = outcome.run_requests
        assert run_requested(defs, instance, sensor, request).success
        return outcome.cursor

    assert endpoints.get(SPEC.online_endpoint).workers == 1
    breached = health({"slo_p99_ms": 0.001}, traffic=True)
    assert breached.breaches and "SLO" in breached.breaches[0]
    assert endpoints.get(SPEC.online_endpoint).workers == 1  # the health run only observes
    cursor = decide_and_run(None)
    assert endpoints.get(SPEC.online_endpoint).workers == 2
    assert score_ok(resources)

    with dg.build_sensor_context(instance=instance, cursor=cursor) as ctx:
        assert "no new" in sensor(ctx).skip_message  # one health result, one request

    # The load is gone. The first looks cover the new worker's start-up CPU; look again
    # (each look takes a while) until a window is quiet, and the sensor acts on that one.
    deadline = time.monotonic() + 60
    while not (quiet := health()).underloaded and time.monotonic() < deadline:
        pass
    assert quiet.breaches == () and quiet.underloaded
    decide_and_run(cursor)
    assert endpoints.get(SPEC.online_endpoint).workers == 1
    scaled = resources["governance"].audit().read(action="scale", newest_first=False)
    assert [(r["details"]["from"], r["details"]["to"]) for r in scaled] == [(1, 2), (2, 1)]
    infra = [n for n in notifier.read_outbox() if n["topic"] == "infra"]
    assert [n["facts"]["to"] for n in infra] == [2, 1]


def score_ok(resources) -> bool:
    holdout = champion_holdout(resources, SPEC.model_name)
    response = resources["endpoints"].invoke(
        SPEC.online_endpoint, azureml_payload(SPEC.codec.request_batch(holdout.head(3)))
    )
    return response.status_code == 200
