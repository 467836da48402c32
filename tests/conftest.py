"""Shared fixtures: Dagster test instances, local stores under tmp_path, a real Azurite server.

Azurite (npm package `azurite`, installed into .tools/ by `make test`) runs on
127.0.0.1 with telemetry off and in-memory persistence; the fixture stops it
by PID. Its connection string uses Azurite's published development account
key, which is not a secret.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path

import dagster as dg
import pytest

from resources.compute import InProcessCompute
from resources.env import local_resources
from tests.postgres_cluster import pg_cluster, pg_stores  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[1]
AZURITE_BIN = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

warnings.filterwarnings("ignore", category=dg.BetaWarning)
os.environ.setdefault("OMP_NUM_THREADS", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> str:
    """A running Azurite blob service; yields its connection string."""
    binary = str(AZURITE_BIN) if AZURITE_BIN.exists() else shutil.which("azurite-blob")
    if not binary:
        pytest.skip("Azurite is not installed: `make test` installs it with npm into .tools/")
    port = free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--disableTelemetry",
         "--skipApiVersionCheck", "--inMemoryPersistence", "--silent"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "azurite.err").open("wb"),
    )  # fmt: skip
    try:
        try:
            wait_for_port(port)
        except TimeoutError as err:
            err_text = (workdir / "azurite.err").read_text()[-2000:]
            raise RuntimeError(f"Azurite did not start: {err_text}") from err
        yield (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def stop_endpoints(resources: dict) -> None:
    """Stop every scoring server these resources started (by PID)."""
    for info in resources["endpoints"].list():
        resources["endpoints"].stop(info.name)


@pytest.fixture(scope="session")
def landed(tmp_path_factory):
    """Jan-Feb 2013 landed and validated once; tests work on copies of the lake."""
    from tests.helpers import defs_with, land_days

    home = tmp_path_factory.mktemp("landed")
    with dg.instance_for_test() as inst:
        result = land_days(defs_with(local_resources(home)), inst, "2013-01-01", "2013-02-28")
    return home / "lake", result


def make_stores(home: Path, landed_lake: Path) -> dict:
    """Embedded-default resources under `home` with a copy of the landed lake."""
    shutil.copytree(landed_lake, home / "lake")
    resources = local_resources(home)
    resources["compute"] = InProcessCompute()  # fast; one test covers the Pipes subprocess
    return resources


@pytest.fixture
def stores(tmp_path, landed):
    resources = make_stores(tmp_path / "mlops", landed[0])
    yield resources
    stop_endpoints(resources)


# The longest files (whole lifecycles, the daemon, real servers), longest first.
# The longest files (whole lifecycles, the daemon), longest first. Starting the endpoint
# files here too put more servers under load at once and failed latency checks.
LONGEST_FIRST = (
    "tests.test_e2e_daemon",
    "tests.test_e2e_daemon_after_demo",
    "tests.test_vision_lifecycle",
    "tests.test_classical_lifecycle",
    # not beside both daemon tests' start-up (code servers, run workers, the demo): its
    # staging load test missed the latency SLO there on fresh clones
    "tests.test_nlp_lifecycle",
    "tests.test_segmentation_lifecycle",
    "tests.test_classical_outer_loop",
    "tests.test_classical_monitoring",
    "tests.test_labeling_loopback",
    "tests.test_concurrent_training",
    "tests.test_postgres_lifecycle",
    "tests.test_postgres_daemon",
    "tests.scenarios.nlp.test_text_models",
    "tests.test_batch_scoring",
    "tests.resources.test_registry_azure",
    "tests.serving.test_azmlinfsrv_contract",
    "tests.resources.test_batch_azure_endpoint",
    "tests.resources.test_labeling_studio",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first. `make test` runs `-n 3 --dist loadfile
    --no-loadscope-reorder`: xdist then hands out files in this order, each to the next
    free worker, so the long ones start at once instead of after every short file (xdist's
    default order, most tests first, left them to the end, one worker each: minutes of
    tail while the others idled)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__, len(rank)))
