"""One immutable snapshot of what the server serves, built from `ServingSettings`.

A request reads `state.runtime` once and uses that snapshot to the end, so a
config reload (which swaps the whole object in one assignment) never changes keys,
routing or models under a request in flight: nothing fails during a reload.

Design constraints: building a runtime loads models (slow), so it runs on a
thread; deployments whose settings did not change are carried over from the
previous runtime with their loaded model and batcher, so a key rotation or a
traffic shift reloads no model.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from serving.batching import MicroBatcher
from serving.collector import InferenceLogWriter
from serving.errors import ApiError
from serving.labels import header_text, version_label
from serving.routing import Router
from serving.scoring.model import ModelLoadError, ServedModel
from serving.settings import DeploymentSettings, ServingSettings


@dataclass(frozen=True)
class Deployment:
    """A named model behind the endpoint, with its batcher and the headers naming it."""

    name: str
    settings: DeploymentSettings
    model: ServedModel
    batcher: MicroBatcher
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        # Built once: every answer names the deployment and the registry version it serves.
        spec = self.settings
        model = " ".join(filter(None, (spec.model_name, self.version_label)))
        headers = {"azureml-model-deployment": self.name}
        if model:
            headers["x-mlops-model"] = header_text(model)
        object.__setattr__(self, "headers", headers)

    @property
    def version_label(self) -> str:
        spec = self.settings
        return version_label(spec.model_version, spec.registry, spec.source_version)

    def describe(self) -> dict[str, Any]:
        return {
            "model_name": self.settings.model_name,
            "model_version": self.settings.model_version,
            "registry": self.settings.registry,
            "source_version": self.settings.source_version,
            "version_label": self.version_label,
            "max_batch_rows": self.settings.max_batch_rows,
            **self.model.describe(),
        }


class WriterPool:
    """Inference-log writers by (folder, endpoint), shared across reloads."""

    def __init__(self) -> None:
        self._writers: dict[tuple[str, str], InferenceLogWriter] = {}
        self._lock = threading.Lock()

    def get(self, directory: str, endpoint: str) -> InferenceLogWriter:
        with self._lock:
            key = (directory, endpoint)
            if key not in self._writers:
                self._writers[key] = InferenceLogWriter(directory, endpoint)
            return self._writers[key]

    def close(self) -> None:
        with self._lock:
            writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.close()


class Runtime:
    """Settings, loaded deployments, router, keys and log writer of one config."""

    def __init__(
        self,
        settings: ServingSettings,
        deployments: Mapping[str, Deployment],
        writer: InferenceLogWriter,
    ) -> None:
        self.settings = settings
        self.deployments = dict(deployments)
        self.writer = writer
        self.router = Router(settings.traffic, settings.mirror_traffic)
        # Scoring keys only: the replay key (serving.replay) authorizes nothing by itself.
        self._keys = tuple(
            key.encode() for slot, key in settings.keys.items() if slot in ("primary", "secondary")
        )

    def authorized(self, header: str | None) -> bool:
        """Whether `Authorization: Bearer <key>` carries one of the endpoint's keys."""
        if not header or header[:7].lower() != "bearer ":
            return False
        token = header[7:].strip().encode("latin-1")
        # Compare against every key, always: timing must not tell which slot matched.
        matches = [hmac.compare_digest(token, key) for key in self._keys]
        return any(matches)

    def resolve(self, pinned: str | None, request_id: str) -> Deployment:
        """The pinned deployment (`azureml-model-deployment` header) or a weighted pick."""
        if pinned:
            deployment = self.deployments.get(pinned)
            if deployment is None:
                raise ApiError(
                    404,
                    "deployment_not_found",
                    f"endpoint '{self.settings.endpoint}' has no deployment "
                    f"'{pinned}'; it has {sorted(self.deployments)}",
                )
            return deployment
        return self.deployments[self.router.pick(request_id)]

    def describe(self) -> dict[str, Any]:
        return {
            name: {
                **d.describe(),
                "traffic": self.settings.traffic.get(name, 0),
                "mirror_traffic": self.settings.mirror_traffic.get(name, 0),
            }
            for name, d in self.deployments.items()
        }


def build_runtime(
    settings: ServingSettings,
    executor: Executor,
    writers: WriterPool,
    previous: Runtime | None = None,
) -> Runtime:
    """Load what `settings` asks for, reusing unchanged deployments of `previous`."""
    deployments = {}
    for name, spec in settings.deployments.items():
        old = previous.deployments.get(name) if previous else None
        if old is not None and old.settings == spec:
            deployments[name] = old
            continue
        try:
            model = ServedModel(spec.model_path)
        except ModelLoadError as exc:
            raise ModelLoadError(f"deployment '{name}': {exc}") from exc
        deployments[name] = Deployment(
            name, spec, model, MicroBatcher(model, executor, spec.max_batch_rows)
        )
    writer = writers.get(settings.inference_log_dir, settings.endpoint)
    return Runtime(settings, deployments, writer)
