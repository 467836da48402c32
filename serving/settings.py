"""What one scoring server serves: deployments, traffic split, keys, log folder.

The control plane (the endpoint resource) writes this as a JSON file and points
the server at it with `--config` or the `MLOPS_SERVING_CONFIG` environment variable;
to change traffic, models or keys it rewrites the file and asks the server to
reload it (POST /-/reload or SIGHUP, see `serving.app`). Shape:

    {"endpoint": "classical-online",
     "deployments": {"blue": {"model_path": "...", "model_name": "...", "model_version": "3"}},
     "traffic": {"blue": 100}, "mirror_traffic": {"green": 10},
     "keys": {"primary": "...", "secondary": "..."},
     "inference_log_dir": "...", "max_body_bytes": 1048576}

Relative paths are relative to the config file. Loading validates everything
(unknown keys included) and raises `ConfigError` with a message naming the field,
so a bad file is refused before it replaces a working configuration.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "MLOPS_SERVING_CONFIG"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")  # Azure ML endpoint/deployment names
_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII without spaces: it travels in a header


class ConfigError(ValueError):
    """The serving configuration is invalid; the message names the field."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _percentages(raw: Any, field_name: str, deployments: Mapping[str, Any]) -> dict[str, int]:
    _check(isinstance(raw, dict), f"{field_name} must be an object of deployment: percent")
    for name, pct in raw.items():
        _check(name in deployments, f"{field_name} names unknown deployment '{name}'")
        _check(
            type(pct) is int and 0 <= pct <= 100,
            f"{field_name}.{name} must be an integer percent in [0, 100], got {pct!r}",
        )
    return dict(raw)


@dataclass(frozen=True)
class DeploymentSettings:
    """One model behind the endpoint."""

    model_path: str  # a local MLflow model directory (the folder holding MLmodel)
    model_name: str = ""
    model_version: str = ""
    # Concurrent requests are scored in one model call of up to this many rows;
    # 1 turns cross-request batching off (for models whose output depends on the batch).
    max_batch_rows: int = 2048


@dataclass(frozen=True)
class ServingSettings:
    """A validated serving configuration."""

    endpoint: str
    deployments: Mapping[str, DeploymentSettings]
    traffic: Mapping[str, int]
    keys: Mapping[str, str]  # "primary" and optional "secondary"; either one is accepted
    inference_log_dir: str
    mirror_traffic: Mapping[str, int] = field(default_factory=dict)
    max_body_bytes: int = 1 << 20
    source: str | None = field(default=None, compare=False)  # the file it came from

    @classmethod
    def from_dict(
        cls, data: Any, base_dir: str | Path = ".", source: str | None = None
    ) -> ServingSettings:
        _check(isinstance(data, dict), "the serving config must be a JSON object")
        known = {
            "endpoint",
            "deployments",
            "traffic",
            "mirror_traffic",
            "keys",
            "inference_log_dir",
            "max_body_bytes",
        }
        unknown = sorted(data.keys() - known)
        _check(not unknown, f"unknown config keys {unknown}; expected {sorted(known)}")
        for key in ("endpoint", "deployments", "traffic", "keys", "inference_log_dir"):
            _check(key in data, f"the serving config needs '{key}'")
        base = Path(base_dir)

        endpoint = data["endpoint"]
        _check(
            isinstance(endpoint, str) and bool(_NAME.match(endpoint)),
            f"endpoint must be a name matching {_NAME.pattern}, got {endpoint!r}",
        )
        raw_deployments = data["deployments"]
        _check(
            isinstance(raw_deployments, dict) and bool(raw_deployments),
            "deployments must be a non-empty object of name: {model_path, ...}",
        )
        deployments = {}
        for name, raw in raw_deployments.items():
            _check(bool(_NAME.match(name)), f"deployment name {name!r} must match {_NAME.pattern}")
            _check(isinstance(raw, dict), f"deployments.{name} must be an object")
            try:
                spec = DeploymentSettings(**raw)
            except TypeError as exc:
                raise ConfigError(f"deployments.{name}: {exc}") from None
            _check(
                isinstance(spec.model_path, str) and bool(spec.model_path),
                f"deployments.{name}.model_path must be a path",
            )
            _check(
                isinstance(spec.model_name, str) and isinstance(spec.model_version, str),
                f"deployments.{name}.model_name and model_version must be strings",
            )
            _check(
                type(spec.max_batch_rows) is int and spec.max_batch_rows >= 1,
                f"deployments.{name}.max_batch_rows must be an integer >= 1",
            )
            deployments[name] = DeploymentSettings(
                str((base / spec.model_path).resolve()),
                spec.model_name,
                spec.model_version,
                spec.max_batch_rows,
            )

        traffic = _percentages(data["traffic"], "traffic", deployments)
        total = sum(traffic.values())
        _check(
            total == 100, f"traffic must sum to 100 over the deployments, got {total} ({traffic})"
        )
        mirror = _percentages(data.get("mirror_traffic", {}), "mirror_traffic", deployments)

        keys = data["keys"]
        _check(
            isinstance(keys, dict) and set(keys) <= {"primary", "secondary"},
            "keys must be an object with 'primary' and optional 'secondary'",
        )
        for slot, key in keys.items():
            _check(
                isinstance(key, str) and bool(_KEY.match(key)),
                f"keys.{slot} must be a non-empty string of printable ASCII without spaces",
            )
        _check("primary" in keys, "keys.primary is required")

        log_dir = data["inference_log_dir"]
        _check(isinstance(log_dir, str) and bool(log_dir), "inference_log_dir must be a path")
        max_body = data.get("max_body_bytes", 1 << 20)
        _check(type(max_body) is int and max_body > 0, "max_body_bytes must be a positive integer")
        return cls(
            endpoint,
            deployments,
            traffic,
            dict(keys),
            str((base / log_dir).resolve()),
            mirror,
            max_body,
            source,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> ServingSettings:
        file = Path(path).resolve()
        try:
            data = json.loads(file.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read serving config {file}: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"serving config {file} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, base_dir=file.parent, source=str(file))

    @classmethod
    def from_env(cls) -> ServingSettings:
        path = os.environ.get(CONFIG_ENV)
        _check(bool(path), f"set {CONFIG_ENV} to the serving config file")
        return cls.from_file(str(path))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape `from_dict` reads (paths absolute)."""
        return {
            "endpoint": self.endpoint,
            "deployments": {k: asdict(v) for k, v in self.deployments.items()},
            "traffic": dict(self.traffic),
            "mirror_traffic": dict(self.mirror_traffic),
            "keys": dict(self.keys),
            "inference_log_dir": self.inference_log_dir,
            "max_body_bytes": self.max_body_bytes,
        }
