"""Image models at load time and outside our server.

Protects: malformed image metadata or signatures are refused at load, naming the key; a
server process scores an image model without importing torch; `mlflow models serve` answers
the same model the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from serving.scoring.image_model import ImageSpec
from serving.scoring.model import ModelLoadError, ServedModel
from tests.processes import stop_group
from tests.serving.conftest import (
    AUTH,
    MLFLOW_PANDAS_WARNING,
    ROOT,
    TestClient,
    free_port,
)
from tests.serving.images.cases import (
    BRIGHT,
    COLOUR_PNG,
    DARK_JPEG,
    GOOD,
    b64,
    score_split,
)

pytestmark = pytest.mark.filterwarnings(
    f"ignore:{MLFLOW_PANDAS_WARNING}", "ignore::PIL.Image.DecompressionBombWarning"
)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"image_mode": "CMYK"}, "image_mode"),
        ({"image_height": 0}, "image_height"),
        ({"image_width": "28"}, "image_width"),
        ({"max_pixels": None}, "max_pixels"),
        ({"max_images": True}, "max_images"),
        ({"task": "detection"}, "task"),
    ],
)
def test_malformed_image_metadata_is_refused_at_load(
    image_models: dict[str, Path], tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    path = shutil.copytree(image_models["grey"], tmp_path / "model")
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    mlmodel["metadata"].update(change)
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(ModelLoadError, match=problem):
        ServedModel(path)


def test_image_signature_must_be_one_binary_column() -> None:
    from serving.scoring.schema import InputSchema

    schema = InputSchema.from_signature_json('[{"name": "image", "type": "string"}]')
    with pytest.raises(ValueError, match="one binary column"):
        ImageSpec.from_mlmodel({"metadata": {"mlops_input": "image"}}, schema)


# --- processes ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_serving_loads_and_scores_an_image_model_without_torch(
    image_models: dict[str, Path],
) -> None:
    """torch comes with a model's own module when it needs it, never with the server."""
    check = (
        "import sys, base64, json; from serving.scoring.model import ServedModel; "
        "from serving.scoring.parsing import parse_azureml; "
        f"m = ServedModel({str(image_models['grey'])!r}); "
        f"t = parse_azureml({json.dumps(score_split([GOOD]))}); "
        "print(m.predict({'image': m.decode_images(t).pixels}, 1)); "
        "assert 'torch' not in sys.modules, 'serving imported torch'"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "bright" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_mlflow_models_serve_answers_the_same(
    image_models: dict[str, Path], vision: TestClient, tmp_path: Path
) -> None:
    """MLflow's server base64-decodes `binary` columns itself (`base64.decodebytes`) before
    `predict`; the model's `predict` also takes base64 text for direct pyfunc calls."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # it execs `uvicorn`
        "PYTHONPATH": str(ROOT),  # the pickled model class lives in tests.serving
    }
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(image_models["grey"])]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "-w", "1"]
    with open(tmp_path / "mlflow-serve.log", "wb") as log:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the uvicorn child stops with it
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "mlflow-serve.log").read_text()
            assert time.monotonic() < deadline, "mlflow models serve did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        images = [b64(x) for x in (BRIGHT, DARK_JPEG, COLOUR_PNG)]
        body = {"dataframe_split": {"columns": ["image"], "data": [[x] for x in images]}}
        theirs = httpx.post(f"{url}/invocations", json=body, timeout=30)
        assert theirs.status_code == 200, theirs.text
        ours = vision.post("/invocations", json=body, headers=AUTH)
        assert theirs.json() == ours.json()
        # A bad image is a 400 there too (MLflow words it generically).
        bad = {"dataframe_split": {"columns": ["image"], "data": [[b64(b"hello")]]}}
        assert httpx.post(f"{url}/invocations", json=bad, timeout=30).status_code == 400
    finally:
        stop_group(proc, timeout=20)
