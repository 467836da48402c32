"""End to end with the Dagster daemon: drifted traffic -> drift asset -> sensor -> retrain run.

A real `dagster-daemon run` on a test DAGSTER_HOME loads the code location from
workspace.yaml. Drifted traffic goes through the production scoring server,
the monitoring job computes drift, and within a bounded time the daemon's
drift sensor launches one retrain run that succeeds and registers a new
challenger. Later sensor ticks launch nothing more. Every process started here
is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.scenarios.classical import SPEC
from mlops_assets.scenarios.classical.features import build_features
from mlops_assets.scenarios.classical.source import flights_for_day
from resources.env import local_resources
from tests.conftest import ROOT, stop_endpoints
from tests.governance.helpers import approve, governed
from tests.helpers import QUIET, land_days
from tests.test_classical_monitoring import DRIFT_DAY, send_day, shifted

pytestmark = pytest.mark.slow
DEADLINE_S = 420
TICK_LINE = "Checking for new runs for sensor: classical_drift_retrain_sensor"


def runs_with_trigger(instance: dg.DagsterInstance) -> list:
    return [
        r
        for r in instance.get_run_records(dg.RunsFilter(tags={"mlops/trigger": "drift"}))
        if r.dagster_run.job_name == "classical_training_job"
    ]


def test_daemon_sensor_retrains_once_on_drift(tmp_path, landed):
    home, dagster_home = tmp_path / "mlops", tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    shutil.copytree(landed[0], home / "lake")
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
    daemon = None
    # the same instance (storage under DAGSTER_HOME) the daemon opens
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        try:
            # the champion: trained on Jan-Jun by the default config, approved, promoted
            assert land_days(defs, instance, "2013-03-01", "2013-06-30").success
            run = defs.resolve_job_def("classical_training_job").execute_in_process
            assert run(instance=instance, run_config=QUIET, raise_on_error=False).success
            approve(resources, SPEC.model_name, "1", "priya", reason="e2e")
            promote = defs.resolve_job_def("classical_promotion_job").execute_in_process
            assert promote(instance=instance, run_config=QUIET, raise_on_error=False).success

            # a drifted day of production traffic, and its monitoring
            send_day(resources, shifted(build_features(flights_for_day(DRIFT_DAY))), DRIFT_DAY)
            monitoring = defs.resolve_job_def("classical_monitoring_job").execute_in_process
            assert monitoring(instance=instance, partition_key=DRIFT_DAY, run_config=QUIET).success

            daemon = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "dagster-daemon"),
                    "run",
                    "-w",
                    "workspace.yaml",
                ],
                cwd=ROOT,
                env=env,
                stdout=(tmp_path / "daemon.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                runs = runs_with_trigger(instance)
                if runs and runs[0].dagster_run.is_finished:
                    break
                time.sleep(3)
            runs = runs_with_trigger(instance)
            log = (tmp_path / "daemon.log").read_text(errors="replace")[-3000:]
            assert runs, f"no retrain run within {DEADLINE_S}s; daemon log:\n{log}"
            assert runs[0].dagster_run.status == dg.DagsterRunStatus.SUCCESS, log
            assert runs[0].dagster_run.tags["mlops/drift_day"] == DRIFT_DAY
            challenger = resources["registry"].version_by_alias(SPEC.model_name, "challenger")
            assert str(challenger.version) == "2"
            assert challenger.tags["mlops.dagster_run_id"] == runs[0].dagster_run.run_id
            # at least one more tick of the drift sensor after the retrain: still one run
            daemon_log = tmp_path / "daemon.log"
            ticks = daemon_log.read_text(errors="replace").count(TICK_LINE)
            deadline = time.monotonic() + 120
            while daemon_log.read_text(errors="replace").count(TICK_LINE) <= ticks:
                assert time.monotonic() < deadline, "the drift sensor did not tick again"
                time.sleep(1)
            assert len(runs_with_trigger(instance)) == 1
        finally:
            if daemon is not None:
                os.killpg(daemon.pid, signal.SIGTERM)
                try:
                    daemon.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(daemon.pid, signal.SIGKILL)
            stop_endpoints(resources)
    assert Path(home / "lake").exists()
