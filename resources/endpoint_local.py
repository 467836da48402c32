"""`LocalOnlineEndpoints`: online endpoints as scoring-server processes on 127.0.0.1.

Each endpoint is 1..`max_workers` `python -m serving` processes sharing one 127.0.0.1
port (SO_REUSEPORT), with the config in `<root>/<endpoint>/config.json` and the workers
in `server.json`. The port is allocated once and kept across stop/start and crashed
workers, so `scoring_uri` never changes (stopped or not); if another process holds it,
starting fails naming it. `running` is whether a worker answers /health now, asked of the
workers, not read from server.json. Keys: primary and secondary score; `replay` only lets
a client set `x-mlops-event-date`. Every change validates the new config, writes it
atomically and reloads each worker through its own admin port with the key that worker
holds, waiting for every answer: nothing fails during a traffic shift or a key rotation.
`scale` starts workers (ready before it returns) or SIGTERMs the newest, which drain to
the others. After `stop`, traffic, key and scale changes only update the files; a deploy
or `start` starts the endpoint again.

Process management lives in `resources/endpoint_processes.py`, ports and HTTP probes in
`resources/endpoint_ports.py`; this module holds the config files and the interface.
Constraint: every change to an endpoint's files runs under its folder lock (`_locked`).
"""

from __future__ import annotations

import fcntl
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from resources.endpoint import (
    KEY_SLOTS,
    EndpointError,
    EndpointInfo,
    OnlineEndpoints,
    deployment_view,
)
from resources.endpoint_ports import admin_port, answering, reserved_ports, worker_texts
from resources.endpoint_processes import (
    ensure_running,
    free_port,
    live_workers,
    read_json,
    read_state,
    snapshot,
    terminate,
    usage_report,
    write_json,
)

_free_port = free_port  # the old private name; tests import it from here
# Not a scoring key: lets replaying clients file traffic under its business day
# (`x-mlops-replay-key` with `x-mlops-event-date`, see serving/replay.py).
REPLAY_SLOT = "replay"
# After a config change: start the endpoint ("start"), start it unless it was stopped on
# purpose ("unless_stopped": heals crashed workers), or only reload live workers ("if_live").
Run = Literal["start", "unless_stopped", "if_live"]


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

    def _config(self, endpoint: str) -> dict[str, Any]:
        config = read_json(self._dir(endpoint), "config.json")
        if config is None:
            raise EndpointError(
                f"endpoint {endpoint!r} does not exist; deploy a model to create it "
                f"(known: {[e.name for e in self.list()] or 'none'})"
            )
        return config

    def _apply(
        self, endpoint: str, change: Callable[[dict[str, Any]], None], run: Run
    ) -> EndpointInfo:
        """Validate and write a changed config, then make the workers reload it, or start
        them as `run` says."""
        from serving.settings import ServingSettings

        with self._locked(endpoint) as folder:
            old = read_json(folder, "config.json")
            config = json.loads(json.dumps(old)) if old else self._new_config(endpoint, folder)
            config["keys"].setdefault(REPLAY_SLOT, secrets.token_urlsafe(32))  # older configs
            change(config)
            ServingSettings.from_dict(config, base_dir=folder)  # refuse a bad config up front
            write_json(folder, "config.json", config)
            state = read_state(folder)
            if (
                run == "start"
                or (run == "unless_stopped" and not state["stopped"])
                or live_workers(folder, state)
            ):  # the running workers only know the old keys: authorize reloads with those
                self._ensure_running(endpoint, folder, old or config, reload=old is not None)
        return self.get(endpoint)

    def _new_config(self, endpoint: str, folder: Path) -> dict[str, Any]:
        return {
            "endpoint": endpoint,
            "deployments": {},
            "traffic": {},
            "mirror_traffic": {},
            "keys": {slot: secrets.token_urlsafe(32) for slot in (*KEY_SLOTS, REPLAY_SLOT)},
            "inference_log_dir": str(folder / "inference_log"),
        }

    # -- process ---------------------------------------------------------------------------
    def _ensure_running(
        self,
        endpoint: str,
        folder: Path,
        config: dict[str, Any],
        reload: bool,
        target: int | None = None,
    ) -> None:
        """`endpoint_processes.ensure_running` with this resource's startup timeout."""
        avoid = reserved_ports(Path(self.root), but=endpoint)  # stopped endpoints keep theirs
        ensure_running(endpoint, folder, config, reload, self.startup_timeout_s, target, avoid)

    # -- interface -------------------------------------------------------------------------
    def create_or_update_deployment(
        self,
        endpoint: str,
        deployment: str,
        model_dir: str,
        model_name: str,
        model_version: str,
        *,
        registry: str | None = None,
        source_version: str | None = None,
    ) -> EndpointInfo:
        folder = self._dir(endpoint)
        # Snapshot the model next to the endpoint, as a deployment image would; dev and prod
        # number versions independently, so the registry is part of the name.
        version = f"{registry}-v{model_version}" if registry else f"v{model_version}"
        target = folder / "models" / f"{deployment}-{model_name}-{version}"
        snapshot(model_dir, target)

        def change(config: dict[str, Any]) -> None:
            labels = {"registry": registry, "source_version": source_version}
            config["deployments"][deployment] = {
                "model_path": str(target),
                "model_name": model_name,
                "model_version": str(model_version),
                **{key: str(value) for key, value in labels.items() if value},
            }
            if not config["traffic"]:
                config["traffic"] = {deployment: 100}
            config["traffic"].setdefault(deployment, 0)

        return self._apply(endpoint, change, "start")

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

        return self._apply(endpoint, change, "unless_stopped")

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

        return self._apply(endpoint, change, "unless_stopped")

    def get(self, endpoint):
        config = self._config(endpoint)
        folder = self._dir(endpoint)
        state = read_state(folder)
        live = live_workers(folder, state)
        serving = answering(state, live)
        port = state["port"]
        return EndpointInfo(
            name=endpoint,
            scoring_uri=f"http://127.0.0.1:{port}/score" if port else None,
            traffic=dict(config["traffic"]),
            mirror_traffic=dict(config.get("mirror_traffic", {})),
            deployments={n: deployment_view(d) for n, d in config["deployments"].items()},
            running=bool(serving),
            workers=len(live),
            extra={
                "state": "running" if serving else "stopped" if state["stopped"] else "down",
                "answering": len(serving),
                "inference_log_dir": config["inference_log_dir"],
                "pid": live[0]["pid"] if live else None,
                "pids": [w["pid"] for w in live],
                "admin_urls": [f"http://127.0.0.1:{admin_port(state, w)}" for w in live],
                "started": min((w["started"] for w in live if w.get("started")), default=None),
                "target_workers": state["target_workers"],
                "max_workers": self.max_workers,
                "port": state["port"],  # the endpoint's address, kept while it is stopped
            },
        )

    def list(self):
        names = sorted(p.parent.name for p in Path(self.root).glob("*/config.json"))
        return [self.get(name) for name in names]

    def get_keys(self, endpoint):
        """{primary, secondary, replay}; an endpoint created before replay keys gets one."""
        keys = self._config(endpoint)["keys"]
        if REPLAY_SLOT not in keys:
            self._apply(endpoint, lambda config: None, "if_live")  # adds it, reloads
            keys = self._config(endpoint)["keys"]
        return dict(keys)

    def regenerate_key(self, endpoint, slot):
        if slot not in (*KEY_SLOTS, REPLAY_SLOT):
            raise EndpointError(
                f"key slot must be one of {(*KEY_SLOTS, REPLAY_SLOT)}, got {slot!r}"
            )

        def change(config: dict[str, Any]) -> None:
            config["keys"][slot] = secrets.token_urlsafe(32)

        self._apply(endpoint, change, "unless_stopped")
        return self.get_keys(endpoint)

    def start(self, endpoint: str) -> EndpointInfo:
        """Start the configured number of workers on the current config (after a reboot),
        on the endpoint's own port; EndpointError naming the port if another process has it."""
        with self._locked(endpoint) as folder:
            self._ensure_running(endpoint, folder, self._config(endpoint), reload=False)
        return self.get(endpoint)

    def stop(self, endpoint):
        with self._locked(endpoint) as folder:
            state = read_state(folder)
            terminate([w["pid"] for w in live_workers(folder, state)])
            # The port stays recorded: `start` brings the endpoint back at the same address.
            write_json(folder, "server.json", {**state, "workers": [], "stopped": True})

    def scale(self, endpoint, workers):
        if not 1 <= workers <= self.max_workers:
            raise EndpointError(
                f"endpoint {endpoint} can run 1 to max_workers={self.max_workers} workers, "
                f"not {workers}"
            )
        config = self._config(endpoint)
        with self._locked(endpoint) as folder:
            state = read_state(folder)
            if state["stopped"]:  # the count `start` brings back; a stopped endpoint stays so
                write_json(folder, "server.json", {**state, "target_workers": workers})
            else:
                self._ensure_running(endpoint, folder, config, reload=False, target=workers)
        return self.get(endpoint)

    def process_stats(self, endpoint: str, interval_s: float = 0.5) -> dict[str, Any]:
        """CPU percent (of one core, over `interval_s`) and resident memory of each worker."""
        folder = self._dir(endpoint)
        pids = [w["pid"] for w in live_workers(folder, read_state(folder))]
        return {"endpoint": endpoint, **usage_report(pids, interval_s)}

    def worker_metrics(self, endpoint: str) -> dict[str, str]:
        """Each worker's /metrics text by PID (the shared port answers from any one worker)."""
        info = self.get(endpoint)
        return worker_texts(info.extra["pids"], info.extra["admin_urls"], "/metrics")
