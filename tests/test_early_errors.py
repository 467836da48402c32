"""Errors a new user meets first are one clear line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg

from tests.conftest import ROOT
from tests.helpers import QUIET, defs_with


def test_data_job_without_days_says_what_to_pick(stores):
    with dg.instance_for_test() as instance:
        result = (
            defs_with(stores)
            .resolve_job_def("classical_data_job")
            .execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
        )
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    message = failures[0].step_failure_data.error.message
    assert "classical_data_job works on days" in message
    assert "non-partitioned" not in message


def test_demo_with_an_unknown_environment_is_one_line(tmp_path):
    env = {**os.environ, "MLOPS_ENV": "staging", "DAGSTER_HOME": str(tmp_path / "dh"),
           "MLOPS_HOME": str(tmp_path / "m")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "mlops_demo"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "mlops demo: MLOPS_ENV='staging' is not a known environment; use one of ('local', 'azure')"
    ]
    assert not (tmp_path / "m").exists()  # nothing created before the refusal


def test_demo_makes_a_relative_or_missing_dagster_home_usable(tmp_path, monkeypatch):
    from mlops_demo.__main__ import prepare_dagster_home

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", "rel/home")
    home = prepare_dagster_home()
    assert home == tmp_path / "rel" / "home" and os.environ["DAGSTER_HOME"] == str(home)
    assert (home / "dagster.yaml").read_text() == (ROOT / "deploy" / "dagster.yaml").read_text()
    monkeypatch.delenv("DAGSTER_HOME")
    assert prepare_dagster_home() == tmp_path / ".dagster_home"
    assert dg.DagsterInstance.from_config(str(tmp_path / ".dagster_home")) is not None
