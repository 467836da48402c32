"""Start Azure ML's inference server (azmlinfsrv) from its own venv on loopback, and stop it.

Used by `test_azmlinfsrv_contract.py`. The venv is `make azmlinfsrv`'s: azmlinfsrv pins its
own pydantic and opentelemetry, so it cannot share the project's venv. The server runs
`serving/azureml/score.py` with `AZUREML_MODEL_DIR` as Azure ML sets it; gunicorn's
`on_starting` hook in `serving/azureml/loopback.py` moves its listener from 0.0.0.0 to
127.0.0.1 (azmlinfsrv has no option for the host).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from serving.azureml.contract import MAX_BODY_ENV, MODEL_DIR_ENV
from tests.serving.conftest import ROOT, free_port

VENV = ROOT / ".tools" / "azmlinfsrv-venv"
AZMLINFSRV = VENV / "bin" / "azmlinfsrv"
SCORE = ROOT / "serving" / "azureml" / "score.py"
LOOPBACK = ROOT / "serving" / "azureml" / "loopback.py"
MISSING = (
    f"azmlinfsrv is not installed at {AZMLINFSRV.relative_to(ROOT)}: `make azmlinfsrv` "
    "builds that venv (Azure ML's inference server pins its own pydantic and opentelemetry)"
)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Poll the liveness route (GET /) until it answers; azmlinfsrv's worker answers
        only after `init()` loaded the model."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"azmlinfsrv exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(f"{self.url}/", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"azmlinfsrv on {self.url} not live after {timeout_s:g} s")

    def stop(self) -> None:
        """gunicorn's graceful stop (SIGTERM to the master, by PID); SIGKILL after 15 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def launch(model_dir: Path, workdir: Path, max_body_bytes: int) -> Server:
    """Start azmlinfsrv on a free loopback port (returns at once: call `wait_ready`)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        {
            MODEL_DIR_ENV: str(model_dir),
            MAX_BODY_ENV: str(max_body_bytes),
            "GUNICORN_CMD_ARGS": f"--config {LOOPBACK}",
            "MLFLOW_DISABLE_TELEMETRY": "true",  # nothing leaves this machine
            "DO_NOT_TRACK": "true",
        }
    )
    log_path = workdir / f"azmlinfsrv-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed by Server.stop)
    proc = subprocess.Popen(
        [str(AZMLINFSRV), "--entry_script", str(SCORE), "--port", str(port)],
        cwd=workdir,  # azmlinfsrv's AML_APP_ROOT defaults to it
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Server(proc, port, log, log_path)


def listening_hosts(port: int) -> set[str] | None:
    """Local addresses (kernel hex) of the TCP sockets listening on `port`; None off Linux."""
    found: set[str] = set()
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            host, hexport = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(host)
    return found
