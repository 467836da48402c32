"""Fixtures of the text-serving tests: real pyfunc text models (logged with MLflow) and servers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import TestClient, app_client
from tests.serving.text_model import log_text_models
from tests.serving.texts.cases import MODELS, text_config


@pytest.fixture(scope="session")
def text_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return log_text_models(tmp_path_factory.mktemp("text-models"), MODELS)


@pytest.fixture
def texts_config(tmp_path: Path, text_models: dict[str, Path]) -> Callable[..., Path]:
    def write(**overrides: Any) -> Path:
        path = tmp_path / "texts.json"
        path.write_text(json.dumps(text_config(tmp_path, text_models, **overrides)))
        return path

    return write


@pytest.fixture(scope="module")
def texts(
    text_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One in-process server for the module's tests that read no log."""
    path = tmp_path_factory.mktemp("texts") / "texts.json"
    path.write_text(json.dumps(text_config(path.parent, text_models)))
    with app_client(path) as client:
        yield client


@pytest.fixture(scope="module")
def pyfunc_answer(text_models: dict[str, Path]) -> Callable[[list[str]], list[dict[str, Any]]]:
    """What the live model's own pyfunc `predict` answers (MLflow's loader, no truncation)."""
    import mlflow.pyfunc
    import pandas as pd

    loaded = mlflow.pyfunc.load_model(str(text_models["kw"]))
    return lambda texts: loaded.predict(pd.DataFrame({"text": texts})).to_dict(orient="records")


@pytest.fixture(scope="module")
def scored(text_models: dict[str, Path]) -> Callable[[str, list[str]], Any]:
    """The unwrapped model's `score_texts` (answers, monitoring columns) for a deployment."""
    import mlflow.pyfunc

    models = {
        name: mlflow.pyfunc.load_model(str(path)).unwrap_python_model()
        for name, path in text_models.items()
    }
    return lambda name, texts: models[name].score_texts(texts)
