"""A reader for the declarations of deploy/azure/*.bicep, for tests/deploy/test_azure_iac.py.

No Bicep compiler is reachable here (it ships from GitHub and NuGet only), so this reads
what the offline checks need from a template's text: `param` declarations with their
decorators (@allowed, @minLength/@maxLength, @minValue/@maxValue), user-defined object
types, `resource` and `module` statements. It handles the constructs these templates use
(comments, strings holding `//` or brackets, multi-line decorators); it is no general
Bicep parser: `bicep build` (where a binary exists) and the `azure_live` what-if check
the rest.
"""

from __future__ import annotations

import re

JSON_TYPES = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}
_STRING = re.compile(r"'(?:\\.|[^'\\])*'")


def code(text: str) -> str:
    """`text` without `//` comments; a `//` inside a string (a URL) stays."""
    out, i, in_string = [], 0, False
    while i < len(text):
        if in_string and text[i] == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        if text[i] == "'":
            in_string = not in_string
        elif not in_string and text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def depth(line: str) -> int:
    """Net bracket depth change of one line, brackets inside strings ignored."""
    bare = _STRING.sub("''", line)
    return sum(bare.count(c) for c in "([{") - sum(bare.count(c) for c in ")]}")


def statements(text: str) -> list[str]:
    """Top-level statements, each with the decorators written above it."""
    found: list[str] = []
    current: list[str] = []
    start = level = 0
    for line in code(text).splitlines():
        if not line.strip() and level == 0:
            continue
        current.append(line)
        level += depth(line)
        if level == 0:
            if current[start].lstrip().startswith("@"):
                start = len(current)  # a decorator: the statement it decorates follows
                continue
            found.append("\n".join(current))
            current, start = [], 0
    return found


def params(text: str) -> dict[str, dict]:
    """name -> {type, required, allowed, bounds} of each `param`."""
    declared = {}
    for stmt in statements(text):
        match = re.search(r"^param\s+(\w+)\s+([\w\[\]]+)(\s*=)?", stmt, re.M)
        if not match:
            continue
        allowed = re.search(r"@allowed\(\[(.*?)\]\)", stmt, re.S)
        bounds = re.findall(r"@(minLength|maxLength|minValue|maxValue)\((\d+)\)", stmt)
        declared[match[1]] = {
            "type": match[2],
            "required": match[3] is None,
            "allowed": re.findall(r"'([^']*)'", allowed[1]) if allowed else None,
            "bounds": {name: int(limit) for name, limit in bounds},
        }
    return declared


def user_types(text: str) -> dict[str, dict[str, list[str] | None]]:
    """name -> {field: its allowed literal values, or None} of each `type name = {...}`."""
    found = {}
    for stmt in statements(text):
        if match := re.match(r"type\s+(\w+)\s*=\s*\{(.*)\}", stmt, re.S):
            fields = re.findall(r"^\s*(\w+):\s*(.+)$", match[2], re.M)
            found[match[1]] = {k: re.findall(r"'([^']*)'", v) or None for k, v in fields}
    return found


def modules(text: str) -> dict[str, tuple[str, set[str]]]:
    """symbol -> (path, keys of its `params: {...}`) of each `module` statement."""
    found = {}
    for stmt in statements(text):
        if not (match := re.match(r"module\s+(\w+)\s+'([^']+)'", stmt)):
            continue
        keys: set[str] = set()
        level = None
        for line in stmt.splitlines():
            if level is None:
                level = 1 if re.match(r"\s*params:\s*\{", line) else None
                continue
            if level == 1 and (key := re.match(r"\s*(\w+)\s*:", line)):
                keys.add(key[1])
            level += depth(line)
            if level == 0:
                break
        found[match[1]] = (match[2], keys)
    return found


def resources(text: str, resource_type: str | None = None) -> list[tuple[str, str, str]]:
    """(type, apiVersion, statement) of each `resource`, optionally of one type only."""
    found = []
    for stmt in statements(text):
        match = re.match(r"resource\s+\w+\s+'([^'@]+)@([^']+)'", stmt)
        if match and resource_type in (None, match[1]):
            found.append((match[1], match[2], stmt))
    return found


def check_values(declared: dict[str, dict], values: dict, types: dict | None = None) -> list[str]:
    """Problems of `values` (param name -> JSON value) against the declared params; [] if none.

    `types` (from `user_types`) checks the items of a `<type>[]` param field by field."""
    problems = [
        f"missing required param {name!r}"
        for name, param in declared.items()
        if param["required"] and name not in values
    ]
    for name, value in values.items():
        if name not in declared:
            problems.append(f"unknown param {name!r}")
            continue
        problems += _problems(name, declared[name], value, types or {})
    return problems


def _problems(name: str, param: dict, value: object, types: dict) -> list[str]:
    kind = param["type"]
    expected = list if kind.endswith("[]") else JSON_TYPES.get(kind, dict)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return [f"{name}: {type(value).__name__} where {kind} is declared"]
    problems = []
    if param["allowed"] and value not in param["allowed"]:
        problems.append(f"{name}: {value!r} is not one of {param['allowed']}")
    size = len(value) if isinstance(value, str) else value
    for bound, limit in param["bounds"].items():
        if size < limit if bound.startswith("min") else size > limit:
            problems.append(f"{name}: {value!r} breaks {bound}({limit})")
    fields = types.get(kind.removesuffix("[]"))
    for item in value if fields and isinstance(value, list) else []:
        if set(item) != set(fields):
            problems.append(f"{name}: fields {sorted(item)} are not {sorted(fields)}")
        for field, allowed in fields.items():
            if allowed and item.get(field) not in allowed:
                problems.append(f"{name}: {field}={item.get(field)!r} not in {allowed}")
    return problems
