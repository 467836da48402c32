"""Online endpoints: deployments, traffic, keys - modelled on azure-ai-ml's online endpoints.

The vocabulary follows `az ml online-endpoint` / `online-deployment`: an
endpoint has named deployments (blue, green), a traffic split in percent,
optional mirror traffic and two keys. The control plane only talks to this
interface; the data plane (serving/) never imports Dagster.

- `LocalOnlineEndpoints`: each endpoint is a `python -m serving` process on
  127.0.0.1 whose config file lives in `<root>/<endpoint>/config.json`. Every
  change validates the new config, writes it atomically and asks the running
  server to reload: in-flight requests finish on the old runtime, so nothing
  fails during a traffic shift or a key rotation.
- `AzureMLOnlineEndpoints`: managed online endpoints, built as azure-ai-ml
  entities (see `resources/azure_endpoints.py`).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
from pydantic import Field

KEY_SLOTS = ("primary", "secondary")


class EndpointError(RuntimeError):
    """An endpoint operation that cannot proceed; the message says what to do."""


@dataclass
class EndpointInfo:
    name: str
    scoring_uri: str | None
    traffic: dict[str, int]
    mirror_traffic: dict[str, int]
    deployments: dict[str, dict[str, Any]]
    running: bool
    workers: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def live_deployment(self) -> str | None:
        """The deployment taking most traffic (the 'blue' of a blue/green pair)."""
        return max(self.traffic, key=self.traffic.get) if self.traffic else None


class OnlineEndpoints(dg.ConfigurableResource, ABC):
    """Interface to online endpoints (local scoring server or Azure ML)."""

    @abstractmethod
    def create_or_update_deployment(
        self, endpoint: str, deployment: str, model_dir: str, model_name: str, model_version: str
    ) -> EndpointInfo:
        """Create the endpoint if needed and (re)deploy a model; a new endpoint's first
        deployment takes all traffic, later ones start with none."""

    @abstractmethod
    def set_traffic(
        self, endpoint: str, traffic: dict[str, int], mirror: dict[str, int] | None = None
    ) -> EndpointInfo: ...

    @abstractmethod
    def delete_deployment(self, endpoint: str, deployment: str) -> EndpointInfo: ...

    @abstractmethod
    def get(self, endpoint: str) -> EndpointInfo: ...

    @abstractmethod
    def list(self) -> list[EndpointInfo]: ...

    @abstractmethod
    def get_keys(self, endpoint: str) -> dict[str, str]: ...

    @abstractmethod
    def regenerate_key(self, endpoint: str, slot: str) -> dict[str, str]: ...

    @abstractmethod
    def stop(self, endpoint: str) -> None: ...

    def invoke(
        self,
        endpoint: str,
        payload: dict[str, Any],
        deployment: str | None = None,
        path: str = "/score",
        timeout: float = 30.0,
    ) -> httpx.Response:
        info = self.get(endpoint)
        if not info.scoring_uri:
            raise EndpointError(f"endpoint {endpoint} is not running")
        headers = {"Authorization": f"Bearer {self.get_keys(endpoint)['primary']}"}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        base = info.scoring_uri.rsplit("/", 1)[0]
        return httpx.post(base + path, json=payload, headers=headers, timeout=timeout)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class LocalOnlineEndpoints(OnlineEndpoints):
    """Scoring-server processes on 127.0.0.1, one per endpoint, configured by files."""

    root: str = Field(description="Folder holding one sub-folder per endpoint.")
    startup_timeout_s: float = Field(default=90.0, description="Wait for a new server's /health.")

    # -- files ---------------------------------------------------------------------------
    def _dir(self, endpoint: str) -> Path:
        if not endpoint or "/" in endpoint or endpoint.startswith("."):
            raise EndpointError(f"invalid endpoint name {endpoint!r}")
        return Path(self.root) / endpoint

    @contextmanager
    def _locked(self, endpoint: str) -> Iterator[Path]:
        folder = self._dir(endpoint)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, folder: Path, name: str) -> dict[str, Any] | None:
        path = folder / name
        return json.loads(path.read_text()) if path.exists() else None

    def _write(self, folder: Path, name: str, data: dict[str, Any]) -> None:
        tmp = folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds keys
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)

    def _config(self, endpoint: str) -> dict[str, Any]:
        config = self._read(self._dir(endpoint), "config.json")
        if config is None:
            raise EndpointError(
                f"endpoint {endpoint!r} does not exist; deploy a model to create it "
                f"(known: {[e.name for e in self.list()] or 'none'})"
            )
        return config

    def _apply(self, endpoint: str, change: Callable[[dict[str, Any]], None]) -> EndpointInfo:
        """Validate and write a changed config, then make the server (re)load it."""
        from serving.settings import ServingSettings

        with self._locked(endpoint) as folder:
            old = self._read(folder, "config.json")
            config = json.loads(json.dumps(old)) if old else self._new_config(endpoint, folder)
            change(config)
            ServingSettings.from_dict(config, base_dir=folder)  # refuse a bad config up front
            self._write(folder, "config.json", config)
            # The running server only knows the old keys: authorize its reload with those.
            self._ensure_running(endpoint, folder, old or config, reload=old is not None)
        return self.get(endpoint)

    def _new_config(self, endpoint: str, folder: Path) -> dict[str, Any]:
        return {
            "endpoint": endpoint,
            "deployments": {},
            "traffic": {},
            "mirror_traffic": {},
            "keys": {slot: secrets.token_urlsafe(32) for slot in KEY_SLOTS},
            "inference_log_dir": str(folder / "inference_log"),
        }

    # -- process ---------------------------------------------------------------------------
    def _server(self, folder: Path) -> dict[str, Any] | None:
        server = self._read(folder, "server.json")
        return server if server and _alive(server["pid"]) else None

    def _healthy(self, port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _ensure_running(
        self, endpoint: str, folder: Path, config: dict[str, Any], reload: bool
    ) -> None:
        server = self._server(folder)
        if server and self._healthy(server["port"]):
            if reload:
                response = httpx.post(
                    f"http://127.0.0.1:{server['port']}/-/reload",
                    headers={"Authorization": f"Bearer {config['keys']['primary']}"},
                    timeout=120,
                )
                if response.status_code != 200:
                    raise EndpointError(f"endpoint {endpoint} refused the reload: {response.text}")
            return
        port = server["port"] if server else _free_port()
        if server:  # alive but not healthy: replace it
            self._terminate(server["pid"])
        log = open(folder / "server.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--config", str(folder / "config.json"),
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives the Dagster run that started it
        )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._healthy(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                self._terminate(proc.pid)
                tail = (folder / "server.log").read_text(errors="replace")[-1500:]
                raise EndpointError(f"scoring server for {endpoint} did not start:\n{tail}")
            time.sleep(0.2)
        self._write(folder, "server.json", {"pid": proc.pid, "port": port, "started": time.time()})

    def _terminate(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            with suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

    # -- interface -------------------------------------------------------------------------
    def create_or_update_deployment(
        self, endpoint, deployment, model_dir, model_name, model_version
    ):
        folder = self._dir(endpoint)
        # Snapshot the model next to the endpoint, as a deployment image would.
        target = folder / "models" / f"{deployment}-{model_name}-v{model_version}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(model_dir, tmp)
            os.replace(tmp, target)

        def change(config: dict[str, Any]) -> None:
            config["deployments"][deployment] = {
                "model_path": str(target),
                "model_name": model_name,
                "model_version": str(model_version),
            }
            if not config["traffic"]:
                config["traffic"] = {deployment: 100}
            config["traffic"].setdefault(deployment, 0)

        return self._apply(endpoint, change)

    def set_traffic(self, endpoint, traffic, mirror=None):
        known = set(self._config(endpoint)["deployments"])
        unknown = sorted((set(traffic) | set(mirror or {})) - known)
        if unknown:
            raise EndpointError(
                f"endpoint {endpoint} has no deployment {unknown}; has {sorted(known)}"
            )

        def change(config: dict[str, Any]) -> None:
            config["traffic"] = {name: int(traffic.get(name, 0)) for name in config["deployments"]}
            if mirror is not None:
                config["mirror_traffic"] = {k: int(v) for k, v in mirror.items() if v}

        return self._apply(endpoint, change)

    def delete_deployment(self, endpoint, deployment):
        config = self._config(endpoint)
        if config["traffic"].get(deployment, 0) > 0:
            raise EndpointError(
                f"deployment {deployment} still takes {config['traffic'][deployment]}% of "
                f"{endpoint}'s traffic; move its traffic first"
            )

        def change(config: dict[str, Any]) -> None:
            config["deployments"].pop(deployment, None)
            config["traffic"].pop(deployment, None)
            config.get("mirror_traffic", {}).pop(deployment, None)

        return self._apply(endpoint, change)

    def get(self, endpoint):
        config = self._config(endpoint)
        server = self._server(self._dir(endpoint))
        return EndpointInfo(
            name=endpoint,
            scoring_uri=f"http://127.0.0.1:{server['port']}/score" if server else None,
            traffic=dict(config["traffic"]),
            mirror_traffic=dict(config.get("mirror_traffic", {})),
            deployments=dict(config["deployments"]),
            running=server is not None,
            extra={
                "inference_log_dir": config["inference_log_dir"],
                "pid": (server or {}).get("pid"),
            },
        )

    def list(self):
        root = Path(self.root)
        names = (
            sorted(p.name for p in root.iterdir() if (p / "config.json").exists())
            if root.exists()
            else []
        )
        return [self.get(name) for name in names]

    def get_keys(self, endpoint):
        return dict(self._config(endpoint)["keys"])

    def regenerate_key(self, endpoint, slot):
        if slot not in KEY_SLOTS:
            raise EndpointError(f"key slot must be one of {KEY_SLOTS}, got {slot!r}")

        def change(config: dict[str, Any]) -> None:
            config["keys"][slot] = secrets.token_urlsafe(32)

        self._apply(endpoint, change)
        return self.get_keys(endpoint)

    def start(self, endpoint: str) -> EndpointInfo:
        """Start the server on the current config (after a reboot, say)."""
        with self._locked(endpoint) as folder:
            self._ensure_running(endpoint, folder, self._config(endpoint), reload=False)
        return self.get(endpoint)

    def stop(self, endpoint):
        server = self._server(self._dir(endpoint))
        if server:
            self._terminate(server["pid"])
