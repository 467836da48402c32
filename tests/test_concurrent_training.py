"""Two training runs at once, on different windows, each register what they trained.

Protects the run-scoped hand-off: every stage reads the value its own run
produced upstream (by run id), so with two runs interleaving on one Dagster
instance (as dagster.yaml's two concurrent runs do), each registered version's
lineage names its own training set version, its own evaluation run and its own
window, and training on the same days again yields the same dataset version.
"""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg

from mlops_assets.scenarios.classical import SPEC
from mlops_core.results import plain
from tests.concurrent_training_run import UP_TO_REGISTRY, run_config
from tests.conftest import ROOT, make_stores
from tests.helpers import defs_with

WINDOWS = {"jan": ("2013-01-01", "2013-01-31"), "feb": ("2013-02-01", "2013-02-28")}


def materialized(instance: dg.DagsterInstance, run_id: str, artifact: str) -> dict:
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event.asset_key.path[-1] == artifact:
            meta = event.event_specific_data.materialization.metadata
            return plain(meta)
    raise AssertionError(f"{artifact} not materialized in run {run_id}")


def test_concurrent_runs_each_register_their_own_lineage(tmp_path, landed):
    concurrent_lineage(tmp_path, landed[0])


def concurrent_lineage(tmp_path, landed_lake, instance_yaml: str | None = None) -> dict[str, str]:
    """The test's body on the instance `instance_yaml` configures (SQLite by default; the
    PostgreSQL test passes deploy/dagster-postgres.yaml); the two runs' ids by window."""
    home = tmp_path / "mlops"
    stores = make_stores(home, landed_lake)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    if instance_yaml:
        (dagster_home / "dagster.yaml").write_text(instance_yaml)
    # Create the stores once, as a deployment does: two processes racing to create the
    # same SQLite schemas is not what this test is about.
    with dg.DagsterInstance.from_config(str(dagster_home)):
        pass
    stores["registry"].ensure_experiment(SPEC.model_name, "dev")
    stores["registry"].ensure_experiment(SPEC.model_name, "prod")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "OMP_NUM_THREADS": "1"}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "tests.concurrent_training_run", str(home), *window],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, window in WINDOWS.items()
    }
    run_ids = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        run_ids[name] = out.strip().splitlines()[-1]

    registry = stores["registry"]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = {n: instance.get_run_by_id(r) for n, r in run_ids.items()}
        starts = sorted(instance.get_run_record_by_id(r).start_time for r in run_ids.values())
        ends = sorted(instance.get_run_record_by_id(r).end_time for r in run_ids.values())
        assert starts[1] < ends[0], "the two runs did not overlap"
        versions = {}
        for name, run_id in run_ids.items():
            assert runs[name].is_success
            dataset = materialized(instance, run_id, "training_set")
            evaluation = materialized(instance, run_id, "model_evaluation")
            registered = materialized(instance, run_id, "registered_model")
            tags = (
                registry.client("dev")
                .get_model_version(SPEC.model_name, registered["version"])
                .tags
            )
            start, end = WINDOWS[name]
            assert dataset["partition_range"] == f"{start}..{end}"
            assert evaluation["dataset_version"] == dataset["version"]
            assert registered["dataset_version"] == dataset["version"]
            assert tags["mlops.dataset_version"] == dataset["version"]
            assert tags["mlops.evaluation_run"] == run_id
            assert tags["mlops.dagster_run_id"] == run_id
            assert tags["mlops.partition_range"] == f"{start}..{end}"
            versions[name] = (registered["version"], dataset["version"])
        assert len({v for v, _ in versions.values()}) == 2
        assert versions["jan"][1] != versions["feb"][1]

        job = defs_with(stores).resolve_job_def("classical_training_job")
        again = job.execute_in_process(
            instance=instance,
            run_config=run_config(*WINDOWS["jan"]),
            asset_selection=UP_TO_REGISTRY[:1],
        )
        same = materialized(instance, again.run_id, "training_set")
        assert same["version"] == versions["jan"][1] and same["newly_written"] is False
    return run_ids
