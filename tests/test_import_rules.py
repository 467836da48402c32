"""The layering the architecture promises, checked on every import statement (function-level too).

Protects: `serving/` imports nothing of ours (it runs without the control
plane); `mlops_core/` is pure (no Dagster, no assets, resources or sensors),
so the CLI, sensors and training entry points can use it cheaply; `resources/`
never reaches up into assets or sensors; `sensors/` reads only the pure
package, resources and the asset naming vocabulary, never an asset module; the
CLI acts through resources and the pure package, never through an asset module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("mlops_assets", "mlops_core", "mlops_cli", "mlops_demo", "resources", "sensors", "serving")

# package -> (forbidden top-level modules, allowed exceptions as exact module names)
RULES: dict[str, tuple[set[str], set[str]]] = {
    "serving": ({m for m in OURS if m != "serving"} | {"dagster"}, set()),
    "mlops_core": ({"dagster", "mlops_assets", "resources", "sensors", "mlops_cli"}, set()),
    "resources": ({"mlops_assets", "sensors", "mlops_cli", "mlops_demo"}, set()),
    "sensors": ({"mlops_assets", "mlops_cli", "mlops_demo"}, {"mlops_assets.naming"}),
    "mlops_cli": ({"mlops_assets", "sensors", "mlops_demo"}, set()),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def violations(package: str) -> list[str]:
    forbidden, allowed = RULES[package]
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path):
            if module.split(".")[0] in forbidden and module not in allowed:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_respects_its_import_rule(package):
    assert violations(package) == []


def test_rule_checker_sees_function_level_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from mlops_assets.factory import x\n    import dagster\n")
    assert [m for _, m in imported_modules(sample)] == ["mlops_assets.factory", "dagster"]


def test_pure_package_loads_without_dagster():
    code = (
        "import importlib, pkgutil, sys, mlops_core\n"
        "for m in pkgutil.walk_packages(mlops_core.__path__, 'mlops_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('dagster', 'mlops_assets', 'resources', 'sensors'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
