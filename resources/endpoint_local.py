"""`LocalOnlineEndpoints`: online endpoints as scoring-server processes on 127.0.0.1.

Each endpoint is 1..`max_workers` `python -m serving` processes sharing one
127.0.0.1 port (SO_REUSEPORT; the kernel spreads connections), with the config in
`<root>/<endpoint>/config.json` and the workers in `server.json` ({port,
target_workers, workers: [{pid, started, admin_port}]}; the older {pid, port}
shape still reads). Every change validates the new config, writes it atomically
and reloads each worker through its own admin port with the key that worker
holds, waiting for every answer: in-flight requests finish on the old runtime, so
nothing fails during a traffic shift or a key rotation. `scale` starts workers
(ready before it returns) or SIGTERMs the newest, which drain their connections
to the others (see `serving/__main__.py`).
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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import psutil
from pydantic import Field

from resources.endpoint import KEY_SLOTS, EndpointError, EndpointInfo, OnlineEndpoints


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Workers this process started; keeping the handles lets us reap them (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _is_worker(pid: int, folder: Path) -> bool:
    """Whether `pid` runs, and is a scoring server of this endpoint (not a reused PID)."""
    if not _exists(pid):
        return False
    try:
        return str(folder / "config.json") in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


def _terminate(pids: list[int], timeout_s: float = 20.0) -> None:
    """SIGTERM all (workers drain in parallel), then SIGKILL what outlives `timeout_s`."""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while (pids := [pid for pid in pids if _exists(pid)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pids:
            return


def _exists(pid: int) -> bool:
    """Whether `pid` still runs; an exited child of ours is reaped on the way."""
    child = _CHILDREN.get(pid)
    if child is not None:  # ours: waitpid is the only reliable answer (and reaps it)
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    with suppress(ChildProcessError):  # not started here; reap it if it is our child anyway
        os.waitpid(pid, os.WNOHANG)
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class LocalOnlineEndpoints(OnlineEndpoints):
    """Scoring-server processes on 127.0.0.1 sharing one port per endpoint, set up by files."""

    root: str = Field(description="Folder holding one sub-folder per endpoint.")
    startup_timeout_s: float = Field(default=90.0, description="Wait for a new server's /health.")
    max_workers: int = Field(default=4, description="Most worker processes `scale` may run.")

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
    def _state(self, folder: Path) -> dict[str, Any]:
        """server.json as {port, target_workers, workers: [{pid, started, admin_port}]}."""
        state = self._read(folder, "server.json") or {}
        if "pid" in state:  # before workers: one process, no shared port, no admin port
            worker = {"pid": state["pid"], "started": state.get("started"), "legacy": True}
            state = {"port": state["port"], "target_workers": 1, "workers": [worker]}
        state.setdefault("port", None)
        state.setdefault("target_workers", 1)
        state.setdefault("workers", [])
        return state

    def _live(self, folder: Path, state: dict[str, Any]) -> list[dict[str, Any]]:
        """The recorded workers still running, oldest first."""
        return [w for w in state["workers"] if _is_worker(w["pid"], folder)]

    def _admin_port(self, state: dict[str, Any], worker: dict[str, Any]) -> int:
        return worker.get("admin_port") or state["port"]

    def _healthy(self, port: int, timeout: float = 5.0) -> bool:
        """GET /health; a saturated worker gets `timeout` before it counts as hung."""
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def _ensure_running(
        self,
        endpoint: str,
        folder: Path,
        config: dict[str, Any],
        reload: bool,
        target: int | None = None,
    ) -> None:
        """Reload the healthy workers, replace dead ones and start or stop to `target`.

        Each worker is reached on its own admin port (the shared port answers from any
        worker), and its reload is authorized with `config`'s keys, the ones it holds.
        """
        state = self._state(folder)
        if target is not None:
            state["target_workers"] = target
        target = state["target_workers"]
        live = self._live(folder, state)
        healthy = [w for w in live if self._healthy(self._admin_port(state, w))]
        _terminate([w["pid"] for w in live if w not in healthy])
        if not healthy:
            state["port"] = None
        elif any(w.get("legacy") for w in healthy) and target > 1:
            # A server from before workers cannot share its port: restart it once.
            _terminate([w["pid"] for w in healthy])
            healthy = []
        state["workers"] = healthy
        try:
            if reload and healthy:
                with ThreadPoolExecutor(len(healthy)) as pool:
                    refusals = [
                        r
                        for r in pool.map(
                            lambda w: self._reload(state, w, config["keys"]["primary"]), healthy
                        )
                        if r
                    ]
                if refusals:
                    raise EndpointError(f"endpoint {endpoint} refused the reload: {refusals[0]}")
            state["port"] = state["port"] or _free_port()
            if len(healthy) < target:
                state["workers"] = healthy + self._spawn(
                    endpoint, folder, state["port"], target - len(healthy)
                )
            elif len(healthy) > target:  # newest first; SIGTERM drains them
                _terminate([w["pid"] for w in healthy[target:]])
                state["workers"] = healthy[:target]
        finally:
            self._write(folder, "server.json", state)

    def _reload(self, state: dict[str, Any], worker: dict[str, Any], key: str) -> str | None:
        """Reload one worker; the refusal's text, or None once it serves the new config."""
        port = self._admin_port(state, worker)
        response = httpx.post(
            f"http://127.0.0.1:{port}/-/reload",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        return None if response.status_code == 200 else f"worker {worker['pid']}: {response.text}"

    def _spawn(self, endpoint: str, folder: Path, port: int, count: int) -> list[dict[str, Any]]:
        """Start `count` workers sharing `port`; return them once all answer /health."""
        started: list[tuple[subprocess.Popen[bytes], dict[str, Any]]] = []
        with open(folder / "server.log", "ab") as log:  # each child keeps its own handle
            for _ in range(count):
                admin = _free_port()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "serving", "--config", str(folder / "config.json"),
                     "--host", "127.0.0.1", "--port", str(port), "--reuse-port",
                     "--admin-port", str(admin), "--log-level", "warning"],
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # outlives the Dagster run that started it
                )  # fmt: skip
                _CHILDREN[proc.pid] = proc
                started.append(
                    (proc, {"pid": proc.pid, "started": time.time(), "admin_port": admin})
                )
        waiting = list(started)
        deadline = time.monotonic() + self.startup_timeout_s
        while waiting:
            waiting = [(p, w) for p, w in waiting if not self._healthy(w["admin_port"], 1.0)]
            failed = [p for p, _ in waiting if p.poll() is not None]
            if failed or (waiting and time.monotonic() > deadline):
                _terminate([p.pid for p, _ in started])
                tail = (folder / "server.log").read_text(errors="replace")[-1500:]
                raise EndpointError(f"scoring server for {endpoint} did not start:\n{tail}")
            if waiting:
                time.sleep(0.2)
        return [w for _, w in started]

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
        folder = self._dir(endpoint)
        state = self._state(folder)
        live = self._live(folder, state)
        return EndpointInfo(
            name=endpoint,
            scoring_uri=f"http://127.0.0.1:{state['port']}/score" if live else None,
            traffic=dict(config["traffic"]),
            mirror_traffic=dict(config.get("mirror_traffic", {})),
            deployments=dict(config["deployments"]),
            running=bool(live),
            workers=len(live),
            extra={
                "inference_log_dir": config["inference_log_dir"],
                "pid": live[0]["pid"] if live else None,
                "pids": [w["pid"] for w in live],
                "admin_urls": [f"http://127.0.0.1:{self._admin_port(state, w)}" for w in live],
                "started": min((w["started"] for w in live if w.get("started")), default=None),
                "target_workers": state["target_workers"],
                "max_workers": self.max_workers,
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
        """Start the configured number of workers on the current config (after a reboot)."""
        with self._locked(endpoint) as folder:
            self._ensure_running(endpoint, folder, self._config(endpoint), reload=False)
        return self.get(endpoint)

    def stop(self, endpoint):
        with self._locked(endpoint) as folder:
            state = self._state(folder)
            _terminate([w["pid"] for w in self._live(folder, state)])
            self._write(folder, "server.json", {**state, "port": None, "workers": []})

    def scale(self, endpoint, workers):
        if not 1 <= workers <= self.max_workers:
            raise EndpointError(
                f"endpoint {endpoint} can run 1 to max_workers={self.max_workers} workers, "
                f"not {workers}"
            )
        config = self._config(endpoint)
        with self._locked(endpoint) as folder:
            self._ensure_running(endpoint, folder, config, reload=False, target=workers)
        return self.get(endpoint)

    def process_stats(self, endpoint: str, interval_s: float = 0.5) -> dict[str, Any]:
        """CPU percent (of one core, over `interval_s`) and resident memory of each worker."""
        folder = self._dir(endpoint)
        procs = []
        for worker in self._live(folder, self._state(folder)):
            with suppress(psutil.Error):
                proc = psutil.Process(worker["pid"])
                proc.cpu_percent(None)  # starts the measurement window
                procs.append(proc)
        time.sleep(interval_s)
        rows = []
        for proc in procs:
            with suppress(psutil.Error):  # a worker that exited meanwhile is left out
                rows.append(
                    {
                        "pid": proc.pid,
                        "cpu_percent": proc.cpu_percent(None),
                        "rss_bytes": proc.memory_info().rss,
                    }
                )
        return {
            "endpoint": endpoint,
            "workers": rows,
            "total": {
                "workers": len(rows),
                "cpu_percent": round(sum(r["cpu_percent"] for r in rows), 1),
                "rss_bytes": sum(r["rss_bytes"] for r in rows),
            },
            "cpu_count": psutil.cpu_count() or 1,
            "interval_s": interval_s,
        }

    def worker_metrics(self, endpoint: str) -> dict[str, str]:
        """Each worker's /metrics text by PID (the shared port answers from any one worker)."""
        info = self.get(endpoint)
        texts = {}
        for pid, url in zip(info.extra["pids"], info.extra["admin_urls"], strict=True):
            with suppress(httpx.HTTPError):  # a worker stopping meanwhile is left out
                response = httpx.get(f"{url}/metrics", timeout=5)
                if response.status_code == 200:
                    texts[str(pid)] = response.text
        return texts
