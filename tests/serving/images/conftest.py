"""Fixtures of the image-serving tests: three real pyfunc image models and servers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import (
    TestClient,
    app_client,
)
from tests.serving.image_model import save_image_model
from tests.serving.images.cases import (
    image_config,
)


@pytest.fixture(scope="session")
def image_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("image-models")
    return {
        "grey": save_image_model(root / "grey"),
        "rgb": save_image_model(root / "rgb", size=(32, 48), mode="RGB", max_pixels=2000 * 2000),
        "seg": save_image_model(root / "seg", size=(16, 16), task="segmentation", max_images=4),
    }


@pytest.fixture
def vision_config(tmp_path: Path, image_models: dict[str, Path]) -> Callable[..., Path]:
    def write(**overrides: Any) -> Path:
        path = tmp_path / "vision.json"
        path.write_text(json.dumps(image_config(tmp_path, image_models, **overrides)))
        return path

    return write


@pytest.fixture(scope="module")
def vision(
    image_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One in-process server for the module's tests that read no log."""
    path = tmp_path_factory.mktemp("vision") / "vision.json"
    path.write_text(json.dumps(image_config(path.parent, image_models)))
    with app_client(path) as client:
        yield client


@pytest.fixture(scope="module")
def pyfunc_answer(image_models: dict[str, Path]) -> Callable[[str, list[bytes]], list[Any]]:
    """What the model's own pyfunc `predict` answers (MLflow's loader, the model's decoding)."""
    import mlflow.pyfunc
    import pandas as pd

    loaded = {name: mlflow.pyfunc.load_model(str(path)) for name, path in image_models.items()}
    return lambda name, images: list(loaded[name].predict(pd.DataFrame({"image": images})))
