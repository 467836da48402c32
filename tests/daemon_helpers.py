"""A champion in production, a drifted day monitored, and a real `dagster-daemon` to start.

Shared by the end-to-end daemon tests. The daemon loads the code location from
workspace.yaml on the test's DAGSTER_HOME; every process started here is stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from mlops_assets.scenarios.classical import SPEC
from mlops_assets.scenarios.classical.features import build_features
from mlops_assets.scenarios.classical.source import flights_for_day
from resources.env import local_resources
from tests.conftest import ROOT, stop_endpoints
from tests.governance.helpers import approve, governed
from tests.helpers import QUIET
from tests.processes import stop_group
from tests.test_classical_monitoring import DRIFT_DAY, send_day, shifted

TICK_LINE = "Checking for new runs for sensor: classical_drift_retrain_sensor"


@dataclass
class Lifecycle:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    resources: dict
    env: dict[str, str]
    log: Path


@contextlib.contextmanager
def drifted_production(tmp_path: Path, landed_lake: Path) -> Iterator[Lifecycle]:
    """Champion v1 trained on the landed Jan-Feb (the training job's default window: the
    latest 181 days landed), approved and promoted; DRIFT_DAY's shifted traffic served by
    production and monitored. Nothing has acted on the drift yet."""
    home, dagster_home = tmp_path / "mlops", tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    shutil.copytree(landed_lake, home / "lake")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "MLOPS_HOME": str(home),
        "MLOPS_ENV": "local",
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    resources = governed(local_resources(home), home)  # the test policy
    from mlops_assets.definitions import build_defs

    defs = build_defs("local", resources=resources)
    # the same instance (storage under DAGSTER_HOME) the daemon opens
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        try:
            run = defs.resolve_job_def("classical_training_job").execute_in_process
            assert run(instance=instance, run_config=QUIET, raise_on_error=False).success
            approve(resources, SPEC.model_name, "1", "priya", reason="e2e")
            promote = defs.resolve_job_def("classical_promotion_job").execute_in_process
            assert promote(instance=instance, run_config=QUIET, raise_on_error=False).success
            send_day(resources, shifted(build_features(flights_for_day(DRIFT_DAY))), DRIFT_DAY)
            monitoring = defs.resolve_job_def("classical_monitoring_job").execute_in_process
            assert monitoring(instance=instance, partition_key=DRIFT_DAY, run_config=QUIET).success
            yield Lifecycle(defs, instance, resources, env, tmp_path / "daemon.log")
        finally:
            stop_endpoints(resources)


@contextlib.contextmanager
def running_daemon(life: Lifecycle) -> Iterator[subprocess.Popen]:
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=life.env,
        stdout=life.log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield daemon
    finally:
        stop_group(daemon, timeout=30)


def log_tail(life: Lifecycle) -> str:
    return life.log.read_text(errors="replace")[-3000:] if life.log.exists() else ""


def drift_ticks(life: Lifecycle) -> int:
    """Drift sensor ticks the daemon has started (a tick is done when the next one starts)."""
    return life.log.read_text(errors="replace").count(TICK_LINE) if life.log.exists() else 0


def wait_for_ticks(life: Lifecycle, count: int, timeout: float = 180) -> None:
    wait_for_log(life, lambda log: log.count(TICK_LINE) >= count, timeout)


def wait_for_log(life: Lifecycle, condition, timeout: float = 180) -> str:
    """Poll the daemon's log until `condition(log)` holds; the log it held."""
    deadline = time.monotonic() + timeout
    while not condition(log := life.log.read_text(errors="replace") if life.log.exists() else ""):
        assert time.monotonic() < deadline, f"the daemon did not get there:\n{log[-3000:]}"
        time.sleep(1)
    return log


def drift_retrain_runs(instance: dg.DagsterInstance) -> list:
    return [
        r
        for r in instance.get_run_records(dg.RunsFilter(tags={"mlops/trigger": "drift"}))
        if r.dagster_run.job_name == "classical_training_job"
    ]
