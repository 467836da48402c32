"""Worker processes of a local online endpoint: spawn, health, reload, stop, server.json.

Purpose: the process side of `LocalOnlineEndpoints` (resources/endpoint_local.py). An
endpoint's workers are `python -m serving` processes sharing one 127.0.0.1 port
(SO_REUSEPORT), each also on its own admin port; `server.json` in the endpoint folder
records them as {port, target_workers, stopped, workers: [{pid, started, admin_port}]} (the
older {pid, port} shape still reads, as one legacy worker without an admin port). `port` is
the endpoint's address: allocated once (`resources.endpoint_ports`), kept when it stops,
reused when it starts again or a crashed worker is replaced. `stopped` marks an endpoint
stopped on purpose, so a traffic or key change does not start it again.

Constraints: the caller holds the endpoint folder's lock around `ensure_running` and any
other change to server.json. A recorded PID counts only while its command line names this
endpoint's config.json (PIDs get reused); whether a worker serves is asked of the worker
(`endpoint_ports.answering`), never read from server.json. Workers this process started
are kept in `_CHILDREN` so they get reaped (no zombies); they start in their own session, so
they outlive the Dagster run that started them. JSON files are written atomically with mode
0600 (config.json holds keys).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil

from resources.endpoint import EndpointError
from resources.endpoint_ports import (
    admin_port,
    allocate_port,
    free_port,
    is_healthy,
    port_is_free,
    reload_worker,
)

# Workers this process started; keeping the handles lets us reap them (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


# -- files ------------------------------------------------------------------------------------
def read_json(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else None


def write_json(folder: Path, name: str, data: dict[str, Any]) -> None:
    """Write `folder/name` atomically (temp file, fsync, rename), readable by the owner only."""
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds keys
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / name)


def snapshot(model_dir: str, target: Path) -> None:
    """Copy a model folder to `target` once (atomically), as a deployment image would."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(model_dir, tmp)
        os.replace(tmp, target)


def read_state(folder: Path) -> dict[str, Any]:
    """server.json as {port, target_workers, stopped, workers: [{pid, started, admin_port}]}."""
    state = read_json(folder, "server.json") or {}
    if "pid" in state:  # before workers: one process, no shared port, no admin port
        worker = {"pid": state["pid"], "started": state.get("started"), "legacy": True}
        state = {"port": state["port"], "target_workers": 1, "workers": [worker]}
    state.setdefault("port", None)
    state.setdefault("target_workers", 1)
    state.setdefault("stopped", False)  # stopped on purpose: only a start or deploy restarts
    state.setdefault("workers", [])
    return state


# -- PIDs -------------------------------------------------------------------------------------
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


def is_worker(pid: int, folder: Path) -> bool:
    """Whether `pid` runs, and is a scoring server of this endpoint (not a reused PID)."""
    if not _exists(pid):
        return False
    try:
        return str(folder / "config.json") in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


def live_workers(folder: Path, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The recorded workers still running, oldest first."""
    return [w for w in state["workers"] if is_worker(w["pid"], folder)]


def _dying(pid: int) -> bool:
    """Whether `pid` is exiting (a zombie, its threads and sockets possibly not yet released)."""
    if pid in _CHILDREN:
        return _exists(pid)  # ours: waitpid answers only once every thread is gone
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def claim_port(endpoint: str, folder: Path, port: int, exited: list[int]) -> None:
    """Wait while workers in `exited` are still dying, then require `port` to be free."""
    deadline = time.monotonic() + 15
    while not port_is_free(port):
        if not any(_dying(pid) for pid in exited) or time.monotonic() > deadline:
            raise EndpointError(
                f"endpoint {endpoint} cannot start: its port {port} (scoring_uri "
                f"http://127.0.0.1:{port}/score) is taken by another process; stop that "
                f"process, or delete 'port' from {folder / 'server.json'} to move it"
            )
        time.sleep(0.05)


def terminate(pids: list[int], timeout_s: float = 20.0) -> None:
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


def sample_usage(pids: list[int], interval_s: float) -> list[dict[str, Any]]:
    """[{pid, cpu_percent (of one core, over `interval_s`), rss_bytes}]; exited PIDs left out."""
    procs = []
    for pid in pids:
        with suppress(psutil.Error):
            proc = psutil.Process(pid)
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
    return rows


def usage_report(pids: list[int], interval_s: float) -> dict[str, Any]:
    """`sample_usage` per worker, with totals and the machine's CPU count."""
    rows = sample_usage(pids, interval_s)
    total = {
        "workers": len(rows),
        "cpu_percent": round(sum(r["cpu_percent"] for r in rows), 1),
        "rss_bytes": sum(r["rss_bytes"] for r in rows),
    }
    cpus = psutil.cpu_count() or 1
    return {"workers": rows, "total": total, "cpu_count": cpus, "interval_s": interval_s}


# -- lifecycle --------------------------------------------------------------------------------
def spawn_workers(
    endpoint: str, folder: Path, port: int, count: int, startup_timeout_s: float
) -> list[dict[str, Any]]:
    """Start `count` workers sharing `port`; return them once all answer /health."""
    started: list[tuple[subprocess.Popen[bytes], dict[str, Any]]] = []
    with open(folder / "server.log", "ab") as log:  # each child keeps its own handle
        for _ in range(count):
            admin = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "serving", "--config", str(folder / "config.json"),
                 "--host", "127.0.0.1", "--port", str(port), "--reuse-port",
                 "--admin-port", str(admin), "--log-level", "warning"],
                stdout=log,
                stderr=log,
                start_new_session=True,  # outlives the Dagster run that started it
            )  # fmt: skip
            _CHILDREN[proc.pid] = proc
            started.append((proc, {"pid": proc.pid, "started": time.time(), "admin_port": admin}))
    waiting = list(started)
    deadline = time.monotonic() + startup_timeout_s
    while waiting:
        waiting = [(p, w) for p, w in waiting if not is_healthy(w["admin_port"], 1.0)]
        failed = [p for p, _ in waiting if p.poll() is not None]
        if failed or (waiting and time.monotonic() > deadline):
            terminate([p.pid for p, _ in started])
            tail = (folder / "server.log").read_text(errors="replace")[-1500:]
            raise EndpointError(f"scoring server for {endpoint} did not start:\n{tail}")
        if waiting:
            time.sleep(0.2)
    return [w for _, w in started]


def ensure_running(
    endpoint: str,
    folder: Path,
    config: dict[str, Any],
    reload: bool,
    startup_timeout_s: float,
    target: int | None = None,
    avoid: set[int] | None = None,
) -> None:
    """Reload the healthy workers, replace dead ones and start or stop to `target`.

    Each worker is reached on its own admin port (the shared port answers from any
    worker), and its reload is authorized with `config`'s keys, the ones it holds.
    The shared port is server.json's: a new endpoint gets one (none of `avoid`, the
    ports other endpoints keep) and keeps it; if another process holds it when no worker
    runs, this raises EndpointError naming it instead of moving the endpoint.
    """
    avoid = avoid or set()
    state = read_state(folder)
    state["stopped"] = False
    if target is not None:
        state["target_workers"] = target
    target = state["target_workers"]
    live = live_workers(folder, state)
    exited = [w["pid"] for w in state["workers"]]  # whatever is not kept below is gone
    healthy = [w for w in live if is_healthy(admin_port(state, w))]
    terminate([w["pid"] for w in live if w not in healthy])
    if healthy and any(w.get("legacy") for w in healthy) and target > 1:
        # A server from before workers cannot share its port: restart it once.
        terminate([w["pid"] for w in healthy])
        healthy = []
    state["workers"] = healthy
    try:
        if reload and healthy:
            key = config["keys"]["primary"]
            with ThreadPoolExecutor(len(healthy)) as pool:
                refusals = [
                    r for r in pool.map(lambda w: reload_worker(state, w, key), healthy) if r
                ]
            if refusals:
                raise EndpointError(f"endpoint {endpoint} refused the reload: {refusals[0]}")
        # The endpoint's address: allocated once, kept across stop, start and crashes.
        state["port"] = state["port"] or allocate_port(avoid)
        if not healthy:
            claim_port(endpoint, folder, state["port"], exited)
        if len(healthy) < target:
            state["workers"] = healthy + spawn_workers(
                endpoint, folder, state["port"], target - len(healthy), startup_timeout_s
            )
        elif len(healthy) > target:  # newest first; SIGTERM drains them
            terminate([w["pid"] for w in healthy[target:]])
            state["workers"] = healthy[:target]
    finally:
        write_json(folder, "server.json", state)
