"""End to end with the Dagster daemon after the demo: no second run for the same event.

Drifted traffic goes through the production scoring server and the monitoring job
computes drift; the demo's way first (`mlops_demo.runs.tick`: the sensor evaluated
in-process, its request run with the daemon's tags), then a real `dagster-daemon run`
started afterwards, as in the README's `make demo` then `make dev`: the daemon launches
no second run for the same event.
"""

from __future__ import annotations

import pytest

from mlops_assets.scenarios.classical import SPEC
from mlops_demo.runs import tick
from tests.daemon_helpers import (
    drift_retrain_runs,
    drifted_production,
    log_tail,
    running_daemon,
    wait_for_log,
)

pytestmark = pytest.mark.slow


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
