"""The Dagster daemon on a PostgreSQL instance: a sensor tick launches a run through the queue.

Protects deploy/dagster-postgres.yaml under the daemon (issue 12, part 1). A real
`dagster-daemon run` on a DAGSTER_HOME whose instance is PostgreSQL evaluates the sensor
of tests/postgres_daemon_defs.py, queues its run, dequeues and launches it, and the run
writes its events. Later ticks ask again with the same run key and launch nothing: that
dedup, the ticks, the sensor's cursor, the run and its materialization are all read back
from PostgreSQL itself with psycopg2.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tests.conftest import ROOT
from tests.postgres_cluster import INSTANCE_YAML, PgStores
from tests.processes import stop_group

pytestmark = pytest.mark.slow
DEFS = Path(__file__).with_name("postgres_daemon_defs.py")
TICKS = "SELECT status FROM job_ticks WHERE type = 'SENSOR' ORDER BY id"


@contextlib.contextmanager
def running_daemon(dagster_home: Path, log: Path) -> Iterator[subprocess.Popen]:
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-f", str(DEFS)],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONWARNINGS": "ignore"},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its code server and run workers go with it
    )
    try:
        yield daemon
    finally:
        stop_group(daemon, timeout=30)


def poll(condition: Callable[[], Any], what: str, daemon: subprocess.Popen, log: Path) -> Any:
    deadline = time.monotonic() + 180
    while not (value := condition()):
        tail = log.read_text(errors="replace")[-3000:]
        assert daemon.poll() is None, f"the daemon exited before {what}:\n{tail}"
        assert time.monotonic() < deadline, f"no {what} within 180 s; daemon log:\n{tail}"
        time.sleep(0.5)
    return value


def test_daemon_launches_a_sensor_run_on_postgres(tmp_path, pg_stores: PgStores):
    dagster_home, log = tmp_path / "dagster_home", tmp_path / "daemon.log"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML.read_text())
    db = pg_stores.dagster_db
    with dg.DagsterInstance.from_config(str(dagster_home)):
        pass  # creates the schema, as `dagster instance migrate` does before a deployment

    def finished_runs() -> list[tuple]:
        return pg_stores.rows(db, "SELECT run_id, status FROM runs WHERE status IN "
                                  "('SUCCESS', 'FAILURE', 'CANCELED')")  # fmt: skip

    with running_daemon(dagster_home, log) as daemon:
        ((run_id, status),) = poll(finished_runs, "finished run", daemon, log)
        seen = len(pg_stores.rows(db, TICKS))
        poll(lambda: len(pg_stores.rows(db, TICKS)) >= seen + 2, "two more ticks", daemon, log)

    assert status == "SUCCESS", log.read_text(errors="replace")[-3000:]
    assert len(pg_stores.rows(db, "SELECT run_id FROM runs")) == 1, "a tick launched twice"
    tags = dict(pg_stores.rows(db, "SELECT key, value FROM run_tags WHERE run_id = %s", (run_id,)))
    assert tags["dagster/sensor_name"] == "heartbeat_sensor"
    assert tags["dagster/run_key"] == "once"
    materialized = pg_stores.rows(
        db, "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = "
            "'ASSET_MATERIALIZATION'", (run_id,),
    )  # fmt: skip
    assert [key for (key,) in materialized] == ['["heartbeat"]']
    statuses = [status for (status,) in pg_stores.rows(db, TICKS)]
    assert statuses.count("SUCCESS") == 1 and "SKIPPED" in statuses[statuses.index("SUCCESS") :]
    assert not list(dagster_home.rglob("*.db")), "a SQLite store was written"
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (state,) = [s for s in instance.all_instigator_state() if s.name == "heartbeat_sensor"]
        # a tick the daemon's shutdown interrupted stays STARTED and never moved the cursor
        assert int(state.instigator_data.cursor) >= len([s for s in statuses if s != "STARTED"])
