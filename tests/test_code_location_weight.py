"""Loading the code location imports Dagster and our modules, not the libraries steps use.

Every run, step process, sensor evaluation and webserver reload loads the code
location; mlflow, scikit-learn, scipy, pandas and the Azure SDKs cost seconds
each, so they are imported inside the asset bodies, resource methods and
training entry points that use them. The load time itself is measured in
bench/orchestration_bench.py, not here: a timed assertion fails on a loaded machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# what a step may import, but loading definitions must not
HEAVY = (
    "mlflow", "sklearn", "scipy", "pandas", "pyarrow", "evidently", "azure", "torch",
    "transformers", "skops", "httpx", "sqlalchemy", "uvicorn", "starlette", "tabulate",
)  # fmt: skip

PROBE = """
import json, sys
import {module} as m
{call}
heavy = {heavy!r}
print(json.dumps(sorted({{n.split('.')[0] for n in sys.modules}} & set(heavy))))
"""


def loaded_heavy_modules(module: str, call: str, tmp_path: Path) -> list[str]:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MLOPS_HOME": str(tmp_path / "mlops")}
    code = PROBE.format(module=module, call=call, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("env_name", ["local", "azure"])
def test_definitions_load_without_step_libraries(env_name, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_ENV", env_name)
    loaded = loaded_heavy_modules(
        "mlops_assets.definitions", "m.defs().resolve_all_job_defs()", tmp_path
    )
    assert loaded == [], f"loading the code location imported {loaded}"


def test_sensor_module_loads_without_step_libraries(tmp_path):
    assert loaded_heavy_modules("sensors", "", tmp_path) == []


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The check can fail: a heavy library imported on the way is reported."""
    assert "pandas" in loaded_heavy_modules("json", "import pandas", tmp_path)
