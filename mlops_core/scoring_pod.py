"""What a Kubernetes scoring pod runs before the server: fetch the model, write the config.

`python -m mlops_core.scoring_pod` is the init container of the Deployment that
`mlops_core.k8s_manifests` renders. It downloads `MLOPS_MODEL_URI` (any URI MLflow
resolves: `models:/name/3`, `runs:/id/model`, a blob or local path; credentials such
as `MLFLOW_TRACKING_URI` come from the pod's environment) into `MLOPS_MODEL_DIR`,
then writes the serving config (serving/settings.py) to `MLOPS_SERVING_CONFIG` with
the endpoint keys read from the environment, where the pod maps them from a Secret.
The config is validated by the server's own `ServingSettings` before it is written,
so a bad input stops the pod here with a message naming it, not in a crash loop.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from serving.settings import ConfigError, ServingSettings

REQUIRED = (
    "MLOPS_MODEL_URI",
    "MLOPS_ENDPOINT",
    "MLOPS_DEPLOYMENT",
    "MLOPS_MODEL_DIR",
    "MLOPS_INFERENCE_LOG_DIR",
    "MLOPS_SERVING_CONFIG",
    "MLOPS_ENDPOINT_PRIMARY_KEY",
)


class PodSetupError(RuntimeError):
    """The pod's environment or model cannot make a serving config; the message says why."""


def serving_config(env: Mapping[str, str], model_path: str) -> dict[str, Any]:
    """The serving config for one deployment taking all traffic, keys from `env`."""
    missing = [name for name in REQUIRED if not env.get(name, "").strip()]
    if missing:
        raise PodSetupError(f"missing environment variable(s): {', '.join(missing)}")
    keys = {"primary": env["MLOPS_ENDPOINT_PRIMARY_KEY"]}
    if env.get("MLOPS_ENDPOINT_SECONDARY_KEY"):
        keys["secondary"] = env["MLOPS_ENDPOINT_SECONDARY_KEY"]
    deployment = env["MLOPS_DEPLOYMENT"]
    config = {
        "endpoint": env["MLOPS_ENDPOINT"],
        "deployments": {
            deployment: {
                "model_path": model_path,
                "model_name": env.get("MLOPS_MODEL_NAME", ""),
                "model_version": env.get("MLOPS_MODEL_VERSION", ""),
            }
        },
        "traffic": {deployment: 100},
        "keys": keys,
        "inference_log_dir": env["MLOPS_INFERENCE_LOG_DIR"],
    }
    try:
        ServingSettings.from_dict(config)
    except ConfigError as exc:
        # ServingSettings never quotes a key in its messages: nothing secret reaches the log
        raise PodSetupError(f"the serving config would be invalid: {exc}") from None
    return config


def fetch_model(uri: str, model_dir: Path) -> str:
    """Download the model folder; the local path of the folder holding `MLmodel`."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    model_dir.mkdir(parents=True, exist_ok=True)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(model_dir)))
    except (MlflowException, OSError) as exc:
        raise PodSetupError(f"cannot download model {uri}: {exc}") from exc
    if not (local / "MLmodel").is_file():
        raise PodSetupError(f"{uri} is not an MLflow model folder (no MLmodel in {local})")
    return str(local)


def prepare(env: Mapping[str, str]) -> Path:
    """Check the environment, fetch the model, write the config; the config's path."""
    serving_config(env, model_path="/")  # refuse a bad environment before downloading
    model_path = fetch_model(env["MLOPS_MODEL_URI"], Path(env["MLOPS_MODEL_DIR"]))
    config = serving_config(env, model_path)
    # the inference log folder is the server's to create, on its own volume
    target = Path(env["MLOPS_SERVING_CONFIG"])
    partial = target.with_suffix(".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # the keys are in it: owner-only from the first byte
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(config, out, indent=2)
        partial.replace(target)
    except OSError as exc:
        raise PodSetupError(f"cannot write the serving config {target}: {exc}") from exc
    return target


def main() -> int:
    try:
        path = prepare(os.environ)
    except PodSetupError as exc:
        print(f"scoring_pod: {exc}", file=sys.stderr)
        return 2
    print(f"scoring_pod: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
