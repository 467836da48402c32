"""The endpoint scaling sensor decides; the run it requests scales, audits and notifies.

Protects: the sensor reads the health result typed and requests one scaling run per
result (run key from its storage id, target and reason in the run config) and never
acts itself; a healthy or idle-at-minimum endpoint requests nothing; the run scales to
the absolute target under the persona policy, with an audit record and a notification;
a breach at the worker limit only notifies; a policy refusal is audited, told and fails
the run. The endpoint is a small fake recording its worker count (the real scoring
server is scaled in tests/test_classical_monitoring.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.deployment.endpoint_scaling import build_endpoint_scaling_defs
from mlops_assets.scenarios.classical import SPEC
from mlops_core.naming import endpoint_scaling_job_name
from mlops_core.results import EndpointHealth
from resources.endpoint import EndpointInfo, OnlineEndpoints
from resources.governance import Governance
from resources.notify import OutboxNotifier
from sensors.infra import build_infra_sensor

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class FakeEndpoints(OnlineEndpoints):
    """One endpoint whose worker count lives in a JSON file (resources are frozen)."""

    state_path: str

    def _workers(self) -> int:
        path = Path(self.state_path)
        return json.loads(path.read_text())["workers"] if path.exists() else 1

    def get(self, endpoint: str) -> EndpointInfo:
        return EndpointInfo(endpoint, None, {"blue": 100}, {}, {}, True, self._workers())

    def scale(self, endpoint: str, workers: int) -> EndpointInfo:
        Path(self.state_path).write_text(json.dumps({"workers": workers}))
        return self.get(endpoint)

    def create_or_update_deployment(self, *args, **kwargs):
        raise NotImplementedError

    def set_traffic(self, *args, **kwargs):
        raise NotImplementedError

    def delete_deployment(self, *args, **kwargs):
        raise NotImplementedError

    def list(self) -> list[EndpointInfo]:
        return [self.get(SPEC.online_endpoint)]

    def get_keys(self, endpoint: str) -> dict[str, str]:
        raise NotImplementedError

    def regenerate_key(self, *args, **kwargs):
        raise NotImplementedError

    def stop(self, endpoint: str) -> None:
        raise NotImplementedError


def health(workers: int, breaches: tuple[str, ...] = (), underloaded: bool = False):
    return EndpointHealth(
        endpoint=SPEC.online_endpoint, workers=workers, requests_per_minute=12.0,
        rate_4xx=0.0, rate_5xx=0.0, p99_ms=400.0 if breaches else 20.0,
        cpu_percent_per_worker=30.0, slo_p99_ms=250.0, breaches=breaches,
        underloaded=underloaded,
    )  # fmt: skip


def make_world(tmp_path, instance, monitoring_user: str = "monitor-bot"):
    resources = {
        "endpoints": FakeEndpoints(state_path=str(tmp_path / "workers.json")),
        "governance": Governance(
            audit_path=str(tmp_path / "audit.jsonl"), monitoring_user=monitoring_user
        ),
        "notifier": OutboxNotifier(outbox_path=str(tmp_path / "outbox.jsonl")),
    }
    defs = dg.Definitions.merge(
        build_endpoint_scaling_defs(SPEC), dg.Definitions(resources=resources)
    )
    return resources, defs, instance, build_infra_sensor(SPEC, max_workers=2)


@pytest.fixture
def world(tmp_path, instance):
    return make_world(tmp_path, instance)


def decide(world, result: EndpointHealth | None, cursor: str | None = None):
    """Report a health result (if any), evaluate the sensor; (requests, cursor, skip)."""
    _, _, instance, sensor = world
    if result is not None:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(["classical", "endpoint_health"], metadata=result.to_metadata())
        )
    with dg.build_sensor_context(instance=instance, cursor=cursor) as ctx:
        outcome = sensor(ctx)
    if isinstance(outcome, dg.SkipReason):
        return [], cursor, outcome.skip_message
    skip = outcome.skip_reason.skip_message if outcome.skip_reason else None
    return list(outcome.run_requests or []), outcome.cursor, skip


def execute(world, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    _, defs, instance, sensor = world
    job = defs.resolve_job_def(sensor.job_name)
    return job.execute_in_process(
        instance=instance, run_config={**QUIET, **request.run_config}, tags=request.tags,
        raise_on_error=False,
    )  # fmt: skip


def test_breach_requests_one_scaling_run_that_scales_audits_and_notifies(world):
    resources, _, instance, sensor = world
    assert sensor.job_name == endpoint_scaling_job_name("classical")
    (request,), cursor, _ = decide(world, health(1, ("p99 latency 400 ms over the 250 ms SLO",)))
    stored = instance.fetch_materializations(dg.AssetKey(["classical", "endpoint_health"]), 1)
    storage_id = stored.records[0].storage_id
    assert request.run_key == f"scale-classical-{storage_id}" and cursor == str(storage_id)
    config = request.run_config["ops"]["classical__endpoint_scaling"]["config"]
    assert config == {
        "target_workers": 2, "from_workers": 1, "max_workers": 2,
        "reason": "p99 latency 400 ms over the 250 ms SLO", "health_storage_id": storage_id,
    }  # fmt: skip
    # the tick acted on nothing
    assert resources["endpoints"].get(SPEC.online_endpoint).workers == 1
    assert resources["notifier"].read_outbox() == []
    assert decide(world, None, cursor)[0] == []  # one health result, one request

    result = execute(world, request)
    assert result.success
    assert resources["endpoints"].get(SPEC.online_endpoint).workers == 2
    (audit,) = resources["governance"].audit().read(action="scale")
    assert audit["outcome"] == "succeeded" and audit["details"] == {"from": 1, "to": 2}
    assert audit["actor"] == "monitor-bot"
    (notice,) = resources["notifier"].read_outbox()
    assert notice["title"] == "classical-online scaled out to 2 worker(s)"
    assert execute(world, request).success  # a retried run does not scale twice
    assert len(resources["governance"].audit().read(action="scale")) == 1

    (back,), _, _ = decide(world, health(2, underloaded=True), cursor)
    assert back.run_config["ops"]["classical__endpoint_scaling"]["config"]["target_workers"] == 1
    assert execute(world, back).success
    assert resources["endpoints"].get(SPEC.online_endpoint).workers == 1


def test_healthy_or_idle_at_minimum_requests_nothing(world):
    requests, cursor, skip = decide(world, health(2))
    assert requests == [] and skip == "endpoint healthy" and cursor
    requests, _, skip = decide(world, health(1, underloaded=True), cursor)
    assert requests == [] and skip == "endpoint healthy"


def test_breach_at_the_limit_only_notifies(world):
    resources = world[0]
    resources["endpoints"].scale(SPEC.online_endpoint, 2)
    (request,), _, _ = decide(world, health(2, ("5xx rate 3% over 1%",)))
    assert execute(world, request).success
    assert resources["endpoints"].get(SPEC.online_endpoint).workers == 2
    assert resources["governance"].audit().read(action="scale") == []
    (notice,) = resources["notifier"].read_outbox()
    assert notice["severity"] == "critical" and notice["title"] == "classical-online at its limit"


def test_policy_refusal_is_audited_told_and_fails_the_run(tmp_path, instance):
    world = make_world(tmp_path, instance, monitoring_user="ci-bot")  # CI/CD may not scale
    resources = world[0]
    (request,), _, _ = decide(world, health(1, ("p99 latency over SLO",)))
    result = execute(world, request)
    assert not result.success
    assert resources["endpoints"].get(SPEC.online_endpoint).workers == 1
    (audit,) = resources["governance"].audit().read(action="scale")
    assert audit["outcome"] == "denied" and audit["actor"] == "ci-bot"
    (notice,) = resources["notifier"].read_outbox()
    assert notice["title"] == "classical-online: scaling denied"
