"""The scoring pod's init step (`python -m mlops_core.scoring_pod`), run here as the pod runs it.

Protects: the init container downloads the model folder through MLflow's own
`download_artifacts` (a local file URI here; `models:/` and blob URIs take the same
path) and writes a config that the server's `ServingSettings` accepts, owner-only,
with the keys from the environment (where the pod maps them from the Secret). Bad
environments stop the pod with the problem named, before any download, and without
echoing a key. The server itself, started on such a config, is tested in tests/serving/;
starting it again here would double this file's run time for no new path.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mlops_core.scoring_pod import PodSetupError, prepare
from serving.settings import ServingSettings

PRIMARY, SECONDARY = "primary-0123456789abcdef", "secondary-fedcba9876543210"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder as the registry stores it (the server reads MLmodel when it loads)."""
    path = tmp_path / "registry" / "flights-3"
    (path / "data").mkdir(parents=True)
    (path / "MLmodel").write_text("flavors:\n  python_function: {loader_module: mlflow.sklearn}\n")
    (path / "data" / "model.skops").write_bytes(b"weights")
    return path


def pod_env(tmp_path: Path, model_uri: str, **overrides: str) -> dict[str, str]:
    env = {
        "MLOPS_MODEL_URI": model_uri,
        "MLOPS_MODEL_NAME": "flights",
        "MLOPS_MODEL_VERSION": "3",
        "MLOPS_ENDPOINT": "classical-online",
        "MLOPS_DEPLOYMENT": "blue",
        "MLOPS_MODEL_DIR": str(tmp_path / "models"),
        "MLOPS_INFERENCE_LOG_DIR": str(tmp_path / "inference"),
        "MLOPS_SERVING_CONFIG": str(tmp_path / "etc" / "serving.json"),
        "MLOPS_ENDPOINT_PRIMARY_KEY": PRIMARY,
        "MLOPS_ENDPOINT_SECONDARY_KEY": SECONDARY,
    }
    return {**env, **overrides}


def test_init_step_fetches_the_model_and_writes_a_config_the_server_accepts(tmp_path, model_dir):
    env = pod_env(tmp_path, model_dir.as_uri())
    config_path = prepare(env)
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    settings = ServingSettings.from_file(config_path)
    (deployment,) = settings.deployments.values()
    assert (Path(deployment.model_path) / "MLmodel").is_file()
    assert Path(deployment.model_path).is_relative_to(tmp_path / "models")  # a copy, not a link
    assert settings.keys == {"primary": PRIMARY, "secondary": SECONDARY}
    assert settings.traffic == {"blue": 100}
    assert (deployment.model_name, deployment.model_version) == ("flights", "3")
    assert (Path(deployment.model_path) / "data" / "model.skops").read_bytes() == b"weights"
    assert settings.inference_log_dir == str(tmp_path / "inference")  # the server creates it


def test_a_missing_key_stops_the_pod_before_any_download(tmp_path, model_dir):
    env = pod_env(tmp_path, model_dir.as_uri(), MLOPS_ENDPOINT_PRIMARY_KEY="")
    with pytest.raises(PodSetupError, match="MLOPS_ENDPOINT_PRIMARY_KEY"):
        prepare(env)
    assert not (tmp_path / "models").exists()


def test_a_folder_without_mlmodel_is_not_served(tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "weights.bin").write_bytes(b"\0")
    with pytest.raises(PodSetupError, match="not an MLflow model folder"):
        prepare(pod_env(tmp_path, str(empty)))
    assert not (tmp_path / "etc" / "serving.json").exists()


def test_an_unwritable_config_folder_is_named(tmp_path, model_dir):
    blocked = tmp_path / "etc"
    blocked.write_text("a file where the config folder should be")
    with pytest.raises(PodSetupError, match="cannot write the serving config"):
        prepare(pod_env(tmp_path, model_dir.as_uri()))


def test_an_invalid_config_names_the_field_and_not_the_key(tmp_path, model_dir):
    bad_key = "has spaces in it"
    env = pod_env(tmp_path, model_dir.as_uri(), MLOPS_ENDPOINT_SECONDARY_KEY=bad_key)
    with pytest.raises(PodSetupError, match=r"keys\.secondary") as caught:
        prepare(env)
    assert bad_key not in str(caught.value)
