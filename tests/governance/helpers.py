"""Test identities and records for governance tests.

Identity is injected the way the product reads it, never via a flag: tests
either pass a `Caller` to `record_decision` or monkeypatch the one identity
source (`resources.identity.os_account`). The test policy is the packaged one
plus `os_users` mapping the OS account `<user>-os` to each policy user; tests
bind it in code (`Governance.policy_path`), as a deployment would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from mlops_core.governance import Caller
from mlops_core.governance.decisions import record_decision
from mlops_core.governance.policy import DEFAULT_POLICY_PATH
from resources.governance import Governance

_runs = itertools.count()


def os_name(user: str) -> str:
    return f"{user}-os"


def caller(user: str) -> Caller:
    """The OS account the test policy maps to policy user `user`."""
    return Caller.os_account(os_name(user))


def write_policy(path: Path, edit: Callable[[dict], None] | None = None) -> Path:
    """The packaged policy, `<user>-os` mapped to every user, then `edit(raw)`."""
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    raw["os_users"] = {os_name(user): user for user in raw["users"]}
    if edit is not None:
        edit(raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def with_policy(governance: Governance, policy_path: Path | None) -> Governance:
    """The same governance resource with `policy_path` bound (deployment config, in code)."""
    fields = {name: getattr(governance, name) for name in type(governance).model_fields}
    return type(governance)(**{**fields, "policy_path": policy_path and str(policy_path)})


def governed(resources: dict, home: Path) -> dict:
    """`resources` with the test policy bound in their governance resource."""
    policy = write_policy(home / "governance" / "test-policy.yaml")
    resources["governance"] = with_policy(resources["governance"], policy)
    return resources


def approve(
    resources: dict,
    model_name: str,
    version: str,
    user: str = "priya",
    decision: str = "approve",
    reason: str = "holdout AUC and slices reviewed",
    requested: str | None = None,
) -> dict[str, Any]:
    """A decision as `mlops approve` takes it: by the OS account mapped to `user`."""
    return record_decision(
        resources["registry"], resources["governance"], resources["approvals"], caller(user),
        model_name, version, decision, reason, requested_user=requested,  # type: ignore[arg-type]
    )  # fmt: skip


def registration(store: Any, name: str, version: str, run_id: str, **who: str) -> None:
    store.record_registration(
        {"model_name": name, "version": version, "mlflow_run_id": run_id,
         "trained_by": who.get("trained_by", "os:trainer"),
         "registered_by": who.get("registered_by", "os:dagster"),
         "registered_at": datetime.now(UTC).isoformat(), "dagster_run_id": "r"}
    )  # fmt: skip


def staging(
    store: Any,
    name: str,
    version: str,
    outcome: str = "passed",
    slo_p99_ms: float = 250.0,
    load_requests: int = 300,
    p99_ms: float = 5.0,
    **extra: Any,
) -> dict[str, Any]:
    checks = ("smoke", "latency_slo", "bad_input", "package_allowlist")
    record = {
        "model_name": name, "version": version, "outcome": outcome,
        "checks": {c: outcome == "passed" or c != "latency_slo" for c in checks},
        "slo_p99_ms": slo_p99_ms, "load_requests": load_requests, "p50_ms": 1.0,
        "p99_ms": p99_ms, "rps": 100.0, "run_id": f"staging-{next(_runs)}",
        "recorded_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "launch_overrides": [], **extra,
    }  # fmt: skip
    store.record_staging(record)
    return record
