"""The classical outer loop with real servers: staging -> approval -> promotion -> blue/green.

Protects: an unauthorized approval is refused and audited; an authorized one
is turned by the sensor into exactly one promotion run; production switches
blue/green with no failed request under live load; a deployment that fails
its canary is rolled back and the previous model keeps serving; a batch
backfill writes each day once. The tests share one lifecycle (module fixture)
and run in file order, each building on the state the previous one left.
"""

from __future__ import annotations

import threading

import dagster as dg
import httpx
import pytest

from mlops_assets.deployment.batch_predictions import predictions_path
from mlops_assets.scenarios.classical import SPEC
from mlops_assets.scenarios.classical.data_assets import validated_path
from mlops_core.governance import PermissionDenied
from mlops_core.governance.decisions import ApprovalRefused
from mlops_core.probes import azureml_payload
from sensors.approvals import build_approval_sensor
from tests.conftest import make_stores, stop_endpoints
from tests.governance import helpers as governance
from tests.helpers import QUIET, champion_holdout, defs_with, metadata, train


@pytest.fixture(scope="module")
def world(tmp_path_factory, landed):
    home = tmp_path_factory.mktemp("outer") / "mlops"
    resources = governance.governed(make_stores(home, landed[0]), home)  # the test policy
    with dg.instance_for_test() as instance:
        yield resources, defs_with(resources), instance
    stop_endpoints(resources)


def approve(resources, version: str, user: str = "priya") -> dict:
    """`mlops approve` by the OS account the test policy maps to `user`."""
    return governance.approve(resources, SPEC.model_name, version, user)


def promote_via_sensor(resources, defs, instance, ops: dict | None = None):
    """Evaluate the approval sensor and run what it requests; returns (requests, results)."""
    sensor = build_approval_sensor(SPEC, "classical_promotion_job")
    sensor_resources = {k: resources[k] for k in ("registry", "approvals", "governance")}
    with dg.build_sensor_context(instance=instance, resources=sensor_resources) as ctx:
        result = sensor(ctx)
    requests = getattr(result, "run_requests", None) or []  # SkipReason has none
    runs = []
    for request in requests:
        config = {**QUIET, "ops": {**request.run_config["ops"], **(ops or {})}}
        runs.append(
            defs.resolve_job_def("classical_promotion_job").execute_in_process(
                instance=instance, run_config=config, raise_on_error=False, tags=request.tags
            )
        )
    return requests, runs


def score(resources, rows: int = 3) -> httpx.Response:
    holdout = champion_holdout(resources, SPEC.model_name)
    return resources["endpoints"].invoke(
        SPEC.online_endpoint, azureml_payload(SPEC.codec.request_batch(holdout.head(rows)))
    )


def test_unauthorized_approval_is_refused_and_audited(world):
    resources, defs, instance = world
    assert train(defs, instance).success
    staged = resources["registry"].client("dev").get_model_version(SPEC.model_name, "1")
    assert staged.tags["mlops.staging"] == "passed"
    with pytest.raises(PermissionDenied, match="data_scientist"):
        approve(resources, "1", user="alice")
    denied = resources["governance"].audit().read(action="approve")[0]
    assert (denied["actor"], denied["outcome"]) == ("alice", "denied")
    tags = resources["registry"].client("dev").get_model_version(SPEC.model_name, "1").tags
    assert "mlops.approval" not in tags


def test_approval_needs_passed_staging(world):
    resources, *_ = world
    store = resources["approvals"]
    assert store.staging_results(SPEC.model_name, "1")[-1]["outcome"] == "passed"
    governance.staging(store, SPEC.model_name, "1", outcome="failed")  # a re-test failed
    with pytest.raises(ApprovalRefused, match="has not passed staging"):
        approve(resources, "1")
    governance.staging(store, SPEC.model_name, "1")  # and the next one passed


def test_approval_sensor_promotes_and_deploys_exactly_once(world):
    resources, defs, instance = world
    decision = approve(resources, "1")
    requests, runs = promote_via_sensor(resources, defs, instance)
    assert [r.run_key for r in requests] == [f"promote-{decision['approval_id']}"]
    assert runs[0].success
    champion = resources["registry"].version_by_alias(SPEC.model_name, "champion", "prod")
    assert champion.tags["mlops.source_version"] == "1"
    assert champion.tags["mlops.approved_by"] == "priya"
    deployed = metadata(runs[0], "production_deployment")
    assert deployed["rolled_back"] is False and deployed["traffic"] == {"blue": 100}
    assert score(resources).status_code == 200
    # the approval is consumed: a second evaluation requests nothing
    assert promote_via_sensor(resources, defs, instance)[0] == []
    actions = [r["action"] for r in resources["governance"].audit().read(newest_first=False)]
    assert actions[-3:] == ["approve", "promote", "deploy"]


def test_blue_green_switch_under_load_then_rollback(world):
    resources, defs, instance = world
    assert train(defs, instance, hyperparameters={"max_iter": 60}).success
    approve(resources, "2")
    statuses: list[int] = []
    stop = threading.Event()
    # a client as in production: the scoring URI and a key, then requests, nothing else
    endpoints = resources["endpoints"]
    uri = endpoints.get(SPEC.online_endpoint).scoring_uri
    headers = {"Authorization": f"Bearer {endpoints.get_keys(SPEC.online_endpoint)['primary']}"}
    holdout = champion_holdout(resources, SPEC.model_name)
    payload = azureml_payload(SPEC.codec.request_batch(holdout.head(3)))

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                statuses.append(client.post(uri, json=payload, headers=headers).status_code)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        _, runs = promote_via_sensor(resources, defs, instance)
    finally:
        stop.set()
        worker.join()
    assert runs[0].success
    assert len(statuses) > 20 and set(statuses) == {200}, sorted(set(statuses))
    info = resources["endpoints"].get(SPEC.online_endpoint)
    assert info.traffic == {"blue": 0, "green": 100}
    assert info.deployments["green"]["model_version"] == "2"

    # v3 fails its canary (an impossible latency SLO): traffic returns to green (v2)
    assert train(defs, instance, hyperparameters={"max_iter": 40}).success
    approve(resources, "3")
    _, runs = promote_via_sensor(
        resources, defs, instance,
        ops={"classical__production_deployment": {"config": {"slo_p99_ms": 0.001}}},
    )  # fmt: skip
    assert not runs[0].success
    rolled = metadata(runs[0], "production_deployment")
    assert rolled["rolled_back"] is True
    info = resources["endpoints"].get(SPEC.online_endpoint)
    assert info.traffic == {"blue": 0, "green": 100}
    response = score(resources)
    assert response.status_code == 200
    assert response.headers["azureml-model-deployment"] == "green"
    champion = resources["registry"].version_by_alias(SPEC.model_name, "champion", "prod")
    assert champion.tags["mlops.source_version"] == "2"
    assert resources["governance"].audit().read(action="rollback")[0]["outcome"] == "succeeded"


def test_batch_backfill_writes_each_day_once(world):
    resources, defs, instance = world
    lake = resources["lake"]
    days = ("2013-02-20", "2013-02-22")
    tags = {
        "dagster/asset_partition_range_start": days[0],
        "dagster/asset_partition_range_end": days[1],
    }
    job = defs.resolve_job_def("classical_batch_scoring_job")
    for _ in range(2):
        result = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET)
        assert result.success
    events = result.get_asset_materialization_events()
    assert len({e.step_key for e in events}) == 1  # one run, one step, for all three days
    assert sorted(e.partition for e in events) == ["2013-02-20", "2013-02-21", "2013-02-22"]
    written = [p for p in lake.list("predictions/classical") if "2013-02-2" in p]
    assert written == [
        predictions_path("classical", d) for d in ("2013-02-20", "2013-02-21", "2013-02-22")
    ]
    for day in ("2013-02-20", "2013-02-21", "2013-02-22"):
        scored = lake.read_parquet(predictions_path("classical", day))
        assert len(scored) == len(lake.read_parquet(validated_path(day)))
        assert scored["late_probability"].between(0, 1).all()
        assert set(scored["model_version"]) == {"2"}
