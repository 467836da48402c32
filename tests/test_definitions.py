"""The code location loads in every environment and follows the naming rules.

Protects: `dagster definitions validate` on the workspace, each environment's
resources binding, one lowercase kind vocabulary, keys prefixed by scenario,
lifecycle-stage groups, owners on every asset, and the instance config.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlops_assets import naming
from mlops_assets.definitions import build_defs
from mlops_assets.scenarios.registry import SCENARIOS
from resources.env import ENVS, current_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("env", ENVS)
def test_every_environment_loads(env):
    dg.Definitions.validate_loadable(build_defs(env))


def test_dagster_cli_validates_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MLOPS_HOME": str(tmp_path / "mlops")}
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_unknown_environment_is_an_error(monkeypatch):
    monkeypatch.setenv("MLOPS_ENV", "staging")
    with pytest.raises(ValueError, match="staging"):
        current_env()
    monkeypatch.delenv("MLOPS_ENV")
    assert current_env() == "local"


def test_asset_specs_follow_the_naming_rules():
    specs = build_defs("local").resolve_all_asset_specs()
    scenarios = {*SCENARIOS, "platform"}
    assert specs
    for spec in specs:
        name = spec.key.to_user_string()
        assert len(spec.key.path) == 2 and spec.key.path[0] in scenarios, name
        assert spec.group_name in naming.GROUPS, name
        assert spec.kinds and spec.kinds <= naming.KINDS, (name, spec.kinds)
        assert spec.owners == naming.OWNERS, name
        assert spec.tags.get("scenario") == spec.key.path[0], name
        assert spec.description, f"{name} needs a docstring"


GENERIC = {
    "candidate_model", "model_evaluation", "registered_model", "staging_deployment", "approval",
    "promoted_model", "production_deployment", "batch_predictions", "inference_log",
    "model_performance", "data_drift", "endpoint_health", "endpoint_scaling",
}  # fmt: skip


def test_vision_graph_has_the_lifecycle_with_labeling():
    keys = {s.key.to_user_string() for s in build_defs("local").resolve_all_asset_specs()}
    vision = {k.removeprefix("vision/") for k in keys if k.startswith("vision/")}
    assert vision == GENERIC | {"raw_images", "training_set", "labeling_tasks", "labeled_set"}


def test_segmentation_graph_has_the_lifecycle_with_labeling():
    defs = build_defs("local")
    keys = {s.key.to_user_string() for s in defs.resolve_all_asset_specs()}
    segmentation = {k.removeprefix("segmentation/") for k in keys if k.startswith("segmentation/")}
    assert segmentation == GENERIC | {"raw_tiles", "training_set", "labeling_tasks", "labeled_set"}
    jobs = {j.name for j in defs.resolve_all_job_defs() if j.name.startswith("segmentation_")}
    wanted = ("data", "training", "labeling", "labeled_training", "batch_scoring")
    assert {f"segmentation_{name}_job" for name in wanted} <= jobs
    schedules = {s.name for s in defs.schedules or []}
    assert "segmentation_daily_ingest_schedule" in schedules


def test_nlp_graph_has_the_lifecycle_with_labeling_and_two_model_families():
    defs = build_defs("local")
    keys = {s.key.to_user_string() for s in defs.resolve_all_asset_specs()}
    nlp = {k.removeprefix("nlp/") for k in keys if k.startswith("nlp/")}
    assert nlp == GENERIC | {"raw_texts", "training_set", "labeling_tasks", "labeled_set"}
    jobs = {j.name for j in defs.resolve_all_job_defs() if j.name.startswith("nlp_")}
    wanted = ("data", "training", "labeling", "labeled_training", "batch_scoring", "monitoring")
    assert {f"nlp_{name}_job" for name in wanted} <= jobs
    from mlops_assets.scenarios.nlp import SPEC

    assert SPEC.model.families == ("bert", "tfidf") and SPEC.loopback == "relabel"


def test_classical_graph_has_the_lifecycle_assets():
    keys = {s.key.to_user_string() for s in build_defs("local").resolve_all_asset_specs()}
    keys = {k for k in keys if not k.startswith(("vision/", "segmentation/", "nlp/"))}
    assert keys == {
        "classical/raw_flights",
        "classical/validated_flights",
        "classical/training_set",
        "classical/candidate_model",
        "classical/model_evaluation",
        "classical/registered_model",
        "classical/staging_deployment",
        "classical/approval",
        "classical/promoted_model",
        "classical/production_deployment",
        "classical/batch_predictions",
        "classical/inference_log",
        "classical/model_performance",
        "classical/data_drift",
        "classical/endpoint_health",
        "classical/endpoint_scaling",
        "platform/cost_ledger",
        "platform/budget_alert",
        "platform/workspace_decay_notice",
    }


def test_every_sensor_and_schedule_is_named_by_its_scope():
    defs = build_defs("local")
    names = [s.name for s in defs.sensors or []] + [s.name for s in defs.schedules or []]
    assert len(names) == len(set(names))
    assert all(n.split("_")[0] in {*SCENARIOS, "platform", "mlops"} for n in names), names


def test_monitoring_data_carries_freshness_policies():
    specs = {s.key.to_user_string(): s for s in build_defs("local").resolve_all_asset_specs()}
    for key in ("classical/inference_log", "classical/data_drift"):
        assert specs[key].freshness_policy is not None, key


def test_gates_are_blocking_checks():
    defs = build_defs("local")
    checks = {
        (c.asset_key.to_user_string(), c.name): c.blocking
        for a in defs.resolve_asset_graph().assets_defs
        for c in a.check_specs
    }
    assert checks[("classical/model_evaluation", "no_worse_than_champion")]
    assert checks[("classical/model_evaluation", "slice_gap")]
    assert all(checks[("classical/raw_flights", c)] for c in ("schema", "nulls", "ranges"))
    staging = ("smoke", "latency_slo", "bad_input", "package_allowlist")
    assert all(checks[("classical/staging_deployment", c)] for c in staging)
    assert checks[("classical/production_deployment", "canary")]


def test_instance_config_is_valid(tmp_path):
    (tmp_path / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_retries_enabled
    assert yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
