"""Fixtures for the scoring server tests: two real MLflow models, configs, servers.

No Dagster here. `models` trains two small sklearn pipelines on synthetic flight
rows and saves them the way the platform registers models (sklearn flavor,
skops, a column signature with one optional column):
- blue: OneHotEncoder(handle_unknown="error") + LogisticRegression, so an unseen
  carrier makes the *model* raise (the 500 path);
- green: HistGradientBoosting (skops trusted type), unknown carriers ignored.
`serve` starts `python -m serving` on a free loopback port and stops it by PID.
`client` (per test) and `module_client` (per test module) serve the default config in
process; `app_client(config)` does the same for a config a test wrote.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np
import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx works the same here
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from serving.app import create_app
from serving.settings import ServingSettings

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["dep_delay", "distance", "carrier", "wind_speed"]
CARRIERS = ["AA", "B6", "DL", "UA"]
PRIMARY, SECONDARY = "primary-key-0123456789", "secondary-key-9876543210"
REPLAY = "replay-key-5555555555"  # lets a request set x-mlops-event-date; scores nothing
AUTH = {"Authorization": f"Bearer {PRIMARY}"}
# mlflow 3.17's pyfunc input handling trips a pandas 3 deprecation; not ours to fix.
MLFLOW_PANDAS_WARNING = "Operation with range is deprecated"


def rows(n: int, seed: int = 0) -> list[list[Any]]:
    """`n` valid input rows in COLUMNS order."""
    rng = np.random.default_rng(seed)
    return [
        [
            round(float(rng.normal(5, 20)), 2),
            int(rng.integers(100, 3000)),
            str(rng.choice(CARRIERS)),
            round(float(rng.uniform(0, 30)), 1),
        ]
        for _ in range(n)
    ]


def split_body(n: int = 3, seed: int = 0) -> dict[str, Any]:
    return {"columns": COLUMNS, "data": rows(n, seed)}


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame(rows(300, seed=42), columns=COLUMNS)
    target = ((frame.dep_delay > 10) | (frame.wind_speed > 25)).astype(int)
    signature = ModelSignature(
        inputs=Schema(
            [
                ColSpec("double", "dep_delay"),
                ColSpec("long", "distance"),
                ColSpec("string", "carrier"),
                ColSpec("double", "wind_speed", required=False),
            ]
        ),
        outputs=Schema([ColSpec("long")]),
    )
    blue = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("wind", SimpleImputer(), ["wind_speed"]),
                        ("carrier", OneHotEncoder(handle_unknown="error"), ["carrier"]),
                    ],
                    remainder="passthrough",
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(frame, target)
    green = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("carrier", OneHotEncoder(handle_unknown="ignore"), ["carrier"])],
                    remainder="passthrough",
                ),
            ),
            ("clf", HistGradientBoostingClassifier(max_iter=20, random_state=0)),
        ]
    ).fit(frame, target)
    root = tmp_path_factory.mktemp("models")
    paths = {"blue": root / "blue", "green": root / "green"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", MLFLOW_PANDAS_WARNING)
        mlflow.sklearn.save_model(
            blue,
            paths["blue"],
            signature=signature,
            input_example=frame.head(2),
            skops_trusted_types=["numpy.dtype"],
        )
        mlflow.sklearn.save_model(
            green,
            paths["green"],
            signature=signature,
            input_example=frame.head(2),
            skops_trusted_types=[
                "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
            ],
        )
    return paths


def make_config(directory: Path, models: dict[str, Path], **overrides: Any) -> dict[str, Any]:
    config = {
        "endpoint": "classical-online",
        "deployments": {
            "blue": {
                "model_path": str(models["blue"]),
                "model_name": "flights",
                "model_version": "3",
            },
            "green": {
                "model_path": str(models["green"]),
                "model_name": "flights",
                "model_version": "4",
            },
        },
        "traffic": {"blue": 100, "green": 0},
        "keys": {"primary": PRIMARY, "secondary": SECONDARY, "replay": REPLAY},
        "inference_log_dir": str(directory / "inference_log"),
        "max_body_bytes": 65536,
        "max_drain_bytes": 4 << 20,
    }
    config.update(overrides)
    return config


@pytest.fixture
def write_config(tmp_path: Path, models: dict[str, Path]) -> Callable[..., Path]:
    """Write a serving config (defaults: blue 100%, green 0%) and return its path."""
    path = tmp_path / "serving.json"

    def write(**overrides: Any) -> Path:
        tmp = path.with_suffix(".tmp")  # atomic replace, as the control plane does
        tmp.write_text(json.dumps(make_config(tmp_path, models, **overrides)))
        os.replace(tmp, path)
        return path

    return write


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Path], Server]]:
    """Start `python -m serving` on loopback; every process is stopped by PID afterwards."""
    started: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(config: Path) -> Server:
        port = free_port()
        log = open(tmp_path / f"server-{port}.log", "wb")  # noqa: SIM115 (closed at teardown)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {proc.returncode}: "
                    f"{(tmp_path / f'server-{port}.log').read_text()}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return Server(proc, url)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server on port {port} not healthy after 60 s")

    yield start
    for proc, log in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@pytest.fixture
def client(write_config: Callable[..., Path]) -> Iterator[TestClient]:
    """An in-process client of an app serving the default config."""
    app = create_app(ServingSettings.from_file(write_config()))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def module_client(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """An in-process client of the default config, shared by one test module's tests."""
    directory = tmp_path_factory.mktemp("bad-input")
    settings = ServingSettings.from_dict(make_config(directory, models))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def app_client(config: Path) -> TestClient:
    """An in-process client of the app serving `config` (use it as a context manager)."""
    return TestClient(create_app(ServingSettings.from_file(config)))
