"""The package allowlist reads a model's requirements.txt the way pip does.

Protects the staging gate against requirement lines that fetch code from
outside the curated index without naming an unlisted package: option lines,
includes, editable installs and direct URL/VCS/path references are refused
unless the allowlist file names them exactly; a line that does not parse is
refused naming its line, never skipped. Normal lines keep working with extras,
version specifiers, markers, hashes and any spelling of the name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_core import probes
from mlops_core.governance.allowlist import (
    Allowlist,
    load_allowlist,
    normalize_option,
    package_violations,
    requirement_violations,
)

ALLOWED = Allowlist.of(["mlflow", "scikit-learn", "numpy", "pandas"])


def write_model(tmp_path: Path, text: str) -> str:
    (tmp_path / "requirements.txt").write_text(text)
    return str(tmp_path)


@pytest.mark.parametrize(
    "line",
    [
        "mlflow==3.1.0",
        "scikit_learn>=1.6,<2",
        "Scikit.Learn~=1.6",
        "numpy",
        "pandas[performance]==2.2.3",
        'numpy==1.26.4 ; python_version >= "3.11"',
        "numpy==1.26.4 --hash=sha256:" + "a" * 64,
        "numpy==1.26.4  # pinned for the scorer",
    ],
)
def test_ordinary_requirement_lines_pass(line):
    assert requirement_violations(line, ALLOWED) == []


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("--extra-index-url https://x.example/simple", "an extra package index"),
        ("--index-url=https://x.example/simple", "a package index override"),
        ("-i https://x.example/simple", "a package index override"),
        ("--find-links https://x.example/wheels", "an extra package location"),
        ("-f ./wheels", "an extra package location"),
        ("--trusted-host x.example", "a host exempt from TLS checks"),
        ("-e git+https://github.com/evil/numpy.git#egg=numpy", "an editable install"),
        ("-r other.txt", "an include of another requirements file"),
        ("-c c.txt", "an include of a constraints file"),
        ("--pre", "a pip option"),
        ("numpy @ https://x.example/numpy-1.0-py3-none-any.whl", "direct reference"),
        ("numpy @ git+https://github.com/evil/numpy.git", "direct reference"),
        ("git+https://github.com/evil/numpy.git#egg=numpy", "direct URL/path reference"),
        ("https://x.example/numpy-1.0.tar.gz", "direct URL/path reference"),
        ("./vendored/numpy", "direct URL/path reference"),
        ("numpy==1.0 --global-option=--evil", "per-requirement pip option"),
        ("requests==2.32", "not in the package allowlist"),
        ("numpy===", "cannot be parsed as a requirement"),
        ("numpy>=>1", "cannot be parsed as a requirement"),
    ],
)
def test_everything_else_is_refused_naming_the_line(tmp_path, line, needle):
    text = f"mlflow==3.1.0\n# a comment\n\n{line}\n"
    problems = package_violations(write_model(tmp_path, text), ALLOWED)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"requirements.txt line 4: '{line}'")
    assert needle in problems[0]


def test_a_reference_needs_its_package_listed_as_well_as_its_url():
    url = "https://pkgs.example/numpy-1.0-py3-none-any.whl"
    listed = Allowlist.of(["numpy"], urls=[url])
    assert requirement_violations(f"numpy @ {url}", listed) == []
    assert requirement_violations(url, listed) == []
    unlisted_name = Allowlist.of(["pandas"], urls=[url])
    assert (
        "not in the package allowlist" in requirement_violations(f"numpy @ {url}", unlisted_name)[0]
    )


def test_options_named_in_the_allowlist_pass_in_any_spelling():
    allowed = Allowlist.of(["numpy"], options=["--extra-index-url=https://pkgs.example/simple"])
    text = "--extra-index-url https://pkgs.example/simple\nnumpy\n"
    assert requirement_violations(text, allowed) == []
    other = "--extra-index-url https://elsewhere.example/simple"
    assert requirement_violations(other, allowed)
    assert normalize_option("-rreqs.txt") == normalize_option("-r  reqs.txt") == "-r reqs.txt"
    assert normalize_option("--index-url=https://a b") == "--index-url https://a b"


def test_continuation_lines_are_joined_and_numbered_from_their_start():
    text = "numpy==1.26.4 \\\n    --hash=sha256:" + "b" * 64 + "\nrequests \\\n  ==2.0\n"
    assert requirement_violations(text, ALLOWED) == [
        "requirements.txt line 3: 'requests ==2.0' is not in the package allowlist"
    ]


def test_a_missing_requirements_file_is_a_violation(tmp_path):
    assert "is missing" in package_violations(str(tmp_path), ALLOWED)[0]


def test_the_shipped_allowlist_refuses_options_and_urls_by_default(tmp_path):
    allowlist = load_allowlist()
    assert allowlist.options == frozenset() and allowlist.urls == frozenset()
    assert "scikit-learn" in allowlist and "Scikit_Learn" in allowlist
    model = write_model(tmp_path, "mlflow==3.1\nscikit-learn==1.6\n--extra-index-url https://x\n")
    assert len(package_violations(model, allowlist)) == 1


def test_probes_keeps_the_staging_entry_points():
    assert probes.package_violations is package_violations
    assert probes.load_allowlist is load_allowlist
    assert requirement_violations("requests", {"numpy"}) and not requirement_violations(
        "numpy", {"NumPy"}
    )
