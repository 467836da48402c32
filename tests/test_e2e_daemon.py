"""End to end with the Dagster daemon: drifted traffic -> drift asset -> sensor -> retrain run.

A real `dagster-daemon run` on a test DAGSTER_HOME loads the code location from
workspace.yaml. Drifted traffic goes through the production scoring server and
the monitoring job computes drift; then either
- the daemon's drift sensor launches one retrain run that succeeds and registers a
  new challenger, and later ticks launch nothing more; or
- the demo's way first (`mlops_demo.runs.tick`: the sensor evaluated in-process, its
  request run with the daemon's tags), then a daemon started afterwards, as in the
  README's `make demo` then `make dev`: the daemon launches no second run for the
  same event.
"""

from __future__ import annotations

import time

import dagster as dg
import pytest

from mlops_assets.scenarios.classical import SPEC
from mlops_demo.runs import tick
from tests.daemon_helpers import (
    drift_retrain_runs,
    drift_ticks,
    drifted_production,
    log_tail,
    running_daemon,
    wait_for_log,
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


def test_a_daemon_after_the_demo_does_not_retrain_the_same_event_again(tmp_path, landed):
    with drifted_production(tmp_path, landed[0]) as life:
        sensor = "classical_drift_retrain_sensor"
        launched = tick(life.defs, sensor, life.instance, life.resources)
        assert [result.success for _, result in launched] == [True]
        registry = life.resources["registry"]
        assert str(registry.version_by_alias(SPEC.model_name, "challenger").version) == "2"
        # the demo again (no new event): nothing more
        assert tick(life.defs, sensor, life.instance, life.resources) == []
        skipped = f"Skipping 1 run for sensor {sensor} already completed with run keys"
        with running_daemon(life):
            # the daemon's first tick finds the demo's run under the sensor's run key
            # (or launches a run, or skips for another reason: the asserts below say which)
            outcomes = (skipped, "Completed launch of run", f"Sensor {sensor} skipped")
            wait_for_log(life, lambda log: any(o in log for o in outcomes))
        runs = drift_retrain_runs(life.instance)
        assert len(runs) == 1, log_tail(life)
        assert skipped in life.log.read_text(errors="replace")
        assert runs[0].dagster_run.tags["dagster/sensor_name"] == sensor
        assert len(registry.versions(SPEC.model_name)) == 2  # no duplicate challenger
