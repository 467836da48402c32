"""The demo's RBAC policy: the packaged one, with the OS account (or Entra ID) running the demo
mapped to the project lead `priya`, bound in code like a deployment binds its policy.

Identity comes from the environment, never from a name in a script, so the demo
cannot "act as priya" without a policy saying who priya is. One account plays
every role in the demo (it trains, registers and approves), which separation of
duties forbids; the demo policy therefore sets `separation_of_duties: false`
and says so. The packaged policy keeps it on, maps nobody, and is what
`make dev` and the `mlops` command use: map your account there (reviewed like
code) to approve from a shell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlops_core.governance.policy import DEFAULT_POLICY_PATH

APPROVER = "priya"  # project_lead in the RBAC policy: may approve in prod


def bind_demo_policy(res: dict[str, Any], home: Path) -> Any:
    """Write the demo policy under `home`, bind it in `res["governance"]`; returns the caller."""
    caller = res["identity"].caller()
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    section = "os_users" if caller.kind == "os" else "entra_ids"
    raw[section] = {caller.name: APPROVER}
    raw["separation_of_duties"] = False  # one account plays every role in this demo
    path = home / "governance" / "demo-policy.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `make demo` (mlops_demo/demo_policy.py); not used by `make dev`.\n"
    path.write_text(header + yaml.safe_dump(raw, sort_keys=False))
    governance = res["governance"]
    fields = {name: getattr(governance, name) for name in type(governance).model_fields}
    res["governance"] = type(governance)(**{**fields, "policy_path": str(path)})
    return caller
