"""End to end with the Dagster daemon: drifted traffic -> drift asset -> sensor -> retrain run.

A real `dagster-daemon run` on a test DAGSTER_HOME loads the code location from
workspace.yaml. Drifted traffic goes through the production scoring server and
the monitoring job computes drift; then the daemon's drift sensor launches one retrain
run that succeeds and registers a new challenger, and later ticks launch nothing more.
(The demo first, then a daemon: tests/test_e2e_daemon_after_demo.py, a file of its own so
the two daemon runs, minutes of waiting on ticks each, go to two test workers.)
"""

from __future__ import annotations

import time

import dagster as dg
import pytest

from mlops_assets.scenarios.classical import SPEC
from tests.daemon_helpers import (
    drift_retrain_runs,
    drift_ticks,
    drifted_production,
    log_tail,
    running_daemon,
    wait_for_ticks,
)
from tests.test_classical_monitoring import DRIFT_DAY

pytestmark = pytest.mark.slow
DEADLINE_S = 420


def test_daemon_sensor_retrains_once_on_drift(tmp_path, landed):
    with drifted_production(tmp_path, landed[0]) as life, running_daemon(life):
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            runs = drift_retrain_runs(life.instance)
            if runs and runs[0].dagster_run.is_finished:
                break
            time.sleep(3)
        runs = drift_retrain_runs(life.instance)
        assert runs, f"no retrain run within {DEADLINE_S}s; daemon log:\n{log_tail(life)}"
        assert runs[0].dagster_run.status == dg.DagsterRunStatus.SUCCESS, log_tail(life)
        assert runs[0].dagster_run.tags["mlops/drift_day"] == DRIFT_DAY
        challenger = life.resources["registry"].version_by_alias(SPEC.model_name, "challenger")
        assert str(challenger.version) == "2"
        assert challenger.tags["mlops.dagster_run_id"] == runs[0].dagster_run.run_id
        # at least one more tick of the drift sensor after the retrain: still one run
        wait_for_ticks(life, drift_ticks(life) + 1, timeout=120)
        assert len(drift_retrain_runs(life.instance)) == 1
