"""The package allowlist a model's environment (MLflow `requirements.txt`) is held to.

A requirements file is more than a list of names: pip also reads options
(`--extra-index-url`, `--index-url`, `--find-links`, `--trusted-host`),
includes (`-r other.txt`, `-c constraints.txt`), editable installs (`-e ...`)
and direct references (`name @ https://...`, a bare URL, VCS or path). Each of
these can fetch code from outside the curated index without naming an
unlisted package, so each is refused unless the allowlist file names it
exactly (`allowed_options` for option lines, `allowed_urls` for direct
references). Ordinary lines are parsed with `packaging` (the grammar pip
uses): names are compared in canonical form; extras, version specifiers,
environment markers and `--hash` pins work as usual. A line that does not parse
is refused with its line number, never skipped. Pure Python, no Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ALLOWLIST_PATH = Path(__file__).parent / "package_allowlist.yaml"

_COMMENT = re.compile(r"(^|\s+)#.*$")
_HASH = re.compile(r"\s+--hash[=\s]+\S+")
_KINDS = {
    "-r": "an include of another requirements file",
    "--requirement": "an include of another requirements file",
    "-c": "an include of a constraints file",
    "--constraint": "an include of a constraints file",
    "-e": "an editable install",
    "--editable": "an editable install",
    "-i": "a package index override",
    "--index-url": "a package index override",
    "--extra-index-url": "an extra package index",
    "-f": "an extra package location",
    "--find-links": "an extra package location",
    "--trusted-host": "a host exempt from TLS checks",
    "--no-index": "an index override",
}
_SHORT_WITH_VALUE = ("-r", "-c", "-e", "-i", "-f")


@dataclass(frozen=True)
class Allowlist:
    """Canonical package names, and the exact option lines and URLs a review accepted."""

    packages: frozenset[str]
    options: frozenset[str] = frozenset()
    urls: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, packages: Iterable[str], options: Iterable[str] = (), urls: Iterable[str] = ()
    ) -> Allowlist:
        return cls(
            packages=frozenset(canonicalize_name(p) for p in packages),
            options=frozenset(normalize_option(o) for o in options),
            urls=frozenset(u.strip() for u in urls),
        )

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonicalize_name(name) in self.packages


def load_allowlist(path: Path = ALLOWLIST_PATH) -> Allowlist:
    """The allowlist file: `packages`, optional `allowed_options` and `allowed_urls`."""
    doc = yaml.safe_load(path.read_text()) or {}
    return Allowlist.of(
        doc.get("packages") or [], doc.get("allowed_options") or [], doc.get("allowed_urls") or []
    )


def normalize_option(line: str) -> str:
    """`--opt=value`, `--opt value` and `-o value`/`-ovalue` in one spelling: `--opt value`."""
    line = " ".join(line.split())
    head, sep, rest = line.partition(" ")
    if head.startswith("--") and "=" in head:
        head, _, value = head.partition("=")
        rest = f"{value} {rest}".strip() if sep else value
    elif not head.startswith("--") and len(head) > 2 and head[:2] in _SHORT_WITH_VALUE:
        head, rest = head[:2], f"{head[2:]} {rest}".strip()
    return f"{head} {rest}".strip()


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, content) with comments removed and `\\` continuations joined."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = _COMMENT.sub("", raw).strip()
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _looks_like_reference(line: str) -> bool:
    return "://" in line or line.startswith((".", "/", "~", "file:")) or "+" in line.split()[0]


def _line_violation(line: str, allowlist: Allowlist) -> str | None:
    if line.startswith("-"):
        option = normalize_option(line)
        if option in allowlist.options:
            return None
        kind = _KINDS.get(option.split(" ", 1)[0], "a pip option")
        return f"is {kind}, not in allowed_options"
    requirement_text = _HASH.sub("", line).strip()
    if " --" in f" {requirement_text}":
        return "uses a per-requirement pip option (only --hash is allowed)"
    try:
        req = Requirement(requirement_text)
    except InvalidRequirement as err:
        if _looks_like_reference(requirement_text):
            if requirement_text in allowlist.urls:
                return None
            return "is a direct URL/path reference, not in allowed_urls"
        return f"cannot be parsed as a requirement ({str(err).splitlines()[0]})"
    problems = []
    if canonicalize_name(req.name) not in allowlist.packages:
        problems.append("is not in the package allowlist")
    if req.url and req.url.strip() not in allowlist.urls:
        problems.append(f"is a direct reference to {req.url}, not in allowed_urls")
    return "; ".join(problems) or None


def requirement_violations(text: str, allowlist: Allowlist | Iterable[str]) -> list[str]:
    """Every line of a requirements file that the allowlist does not permit, by line number."""
    allowed = allowlist if isinstance(allowlist, Allowlist) else Allowlist.of(allowlist)
    out = []
    for number, line in _logical_lines(text):
        problem = _line_violation(line, allowed)
        if problem:
            out.append(f"requirements.txt line {number}: '{line}' {problem}")
    return out


def package_violations(model_dir: str, allowlist: Allowlist | Iterable[str]) -> list[str]:
    """Requirements of an MLflow model (its requirements.txt) that the allowlist refuses."""
    req = Path(model_dir) / "requirements.txt"
    if not req.exists():
        return [f"{req} is missing: the model's environment cannot be checked"]
    return requirement_violations(req.read_text(), allowlist)
