"""The staging gate and separation of duties with the real training and staging assets.

A version trained and registered by priya's OS account records her as trainer
and registrar, so priya cannot approve it. A failed re-test counts; re-running
staging with `slo_p99_ms: 1e9, load_requests: 2` fails its latency check on the
policy minimums and does not count either way, so it cannot launder the failure;
a genuine re-test that passes can.
"""

from __future__ import annotations

import dagster as dg
import pytest

import resources.identity
from mlops_assets.deployment.staging_deployment import build_staging_deployment
from mlops_assets.scenarios.classical import SPEC
from mlops_core.governance.decisions import ApprovalRefused
from tests.conftest import make_stores, stop_endpoints
from tests.governance.helpers import approve, governed, os_name
from tests.helpers import QUIET, defs_with, train

pytestmark = pytest.mark.slow
STAGING = build_staging_deployment(SPEC)


def stage(world: dict, instance, **config) -> dict:
    """Re-run staging alone (it stages the `challenger`); returns the latency check."""
    result = dg.materialize(
        [STAGING], resources=world, instance=instance, raise_on_error=False,
        run_config={**QUIET, "ops": {"classical__staging_deployment": {"config": config}}},
    )  # fmt: skip
    [latency] = [c for c in result.get_asset_check_evaluations() if c.check_name == "latency_slo"]
    return {"passed": latency.passed, "description": latency.description or ""}


def test_trainers_cannot_approve_and_weak_staging_launders_nothing(tmp_path, landed, monkeypatch):
    home = tmp_path / "mlops"
    world = governed(make_stores(home, landed[0]), home)
    store, name = world["approvals"], SPEC.model_name
    monkeypatch.setattr(resources.identity, "os_account", lambda: os_name("priya"))
    try:
        with dg.instance_for_test() as instance:
            assert train(defs_with(world), instance).success
            who = store.registration(name, "1")
            assert (who["trained_by"], who["registered_by"]) == ("os:priya-os", "os:priya-os")
            assert world["registry"].client("dev").get_model_version(name, "1").tags[
                "mlops.trained_by"
            ] == "os:priya-os"  # fmt: skip
            with pytest.raises(ApprovalRefused, match=r"priya .* trained .*separation of duties"):
                approve(world, name, "1", "priya")

            assert not stage(world, instance, slo_p99_ms=0.001)["passed"]  # a real failure
            weak = stage(world, instance, slo_p99_ms=1e9, load_requests=2)
            assert not weak["passed"] and "weaker than the policy minimum" in weak["description"]
            results = store.staging_results(name, "1")
            assert [r["outcome"] for r in results] == ["passed", "failed", "failed"]
            with pytest.raises(ApprovalRefused, match=r"has not passed staging.*outcome 'failed'"):
                approve(world, name, "1", "olivia")

            assert stage(world, instance)["passed"]  # a genuine re-test at the defaults
            assert approve(world, name, "1", "olivia")["user"] == "olivia"
    finally:
        stop_endpoints(world)
