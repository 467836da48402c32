"""Process-wide state of a scoring server: the current runtime, reload, metrics.

Reload protocol (key rotation, traffic shifts, new model versions): the control
plane rewrites the config file, then sends `POST /-/reload` with a currently valid
key, or SIGHUP to the process. The new file is validated and its models loaded on
a thread while the old runtime keeps serving; only a complete, valid runtime
replaces it (one reference assignment), otherwise the old one stays and the
error is reported. Requests in flight finish on the snapshot they started with.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from serving.metrics import server_metrics
from serving.runtime import Runtime, WriterPool, build_runtime
from serving.settings import CONFIG_ENV, ConfigError, ServingSettings

_log = logging.getLogger(__name__)
# Image decoding runs here, off the event loop. Few threads on purpose: each holds at most
# one full-size image (an image model's max_pixels x 4 bytes, plus a converted copy).
DECODE_THREADS = min(4, os.cpu_count() or 1)


class ServerState:
    """Everything one server process holds; `runtime` is swapped on reload."""

    def __init__(self, settings: ServingSettings) -> None:
        # Model calls run here; a batcher keeps at most one call per deployment in flight.
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="predict")
        self.decoder = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="decode")
        self.writers = WriterPool()
        self.metrics = server_metrics(lambda: self.runtime)
        self.started = time.time()
        self.reloads = 0
        self.background: set[asyncio.Task[Any]] = set()
        self.runtime: Runtime = build_runtime(settings, self.executor, self.writers)
        self._reload_lock: asyncio.Lock | None = None

    async def reload(self) -> Runtime:
        """Re-read the config file and swap in its runtime (raises, keeping the old one)."""
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            source = self.runtime.settings.source or os.environ.get(CONFIG_ENV)
            if not source:
                raise ConfigError(f"no config file to reload: start with --config or {CONFIG_ENV}")
            settings = await asyncio.to_thread(ServingSettings.from_file, source)
            runtime = await asyncio.to_thread(
                build_runtime, settings, self.executor, self.writers, self.runtime
            )
            self.runtime = runtime
            self.reloads += 1
            _log.info(
                "reloaded %s: deployments %s, traffic %s",
                source,
                sorted(runtime.deployments),
                dict(settings.traffic),
            )
            return runtime

    def spawn(self, coro: Any) -> None:
        """Run a fire-and-forget coroutine (a mirrored request) and keep it referenced."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def close(self) -> None:
        self.decoder.shutdown(wait=True, cancel_futures=False)
        self.executor.shutdown(wait=True, cancel_futures=False)
        self.writers.close()

    def health(self) -> dict[str, Any]:
        runtime = self.runtime
        return {
            "status": "ok",
            "endpoint": runtime.settings.endpoint,
            "uptime_s": round(time.time() - self.started, 3),
            "reloads": self.reloads,
            "deployments": runtime.describe(),
        }

    def render_metrics(self) -> bytes:
        return self.metrics.render()
