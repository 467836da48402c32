"""The checks an approval and a promotion must pass, each answering None or the reason why not.

They read records from the approvals store and the audit trail, never registry
tags (anyone with registry write access can set a tag). Shared by the approval
decision (`decisions.py`) and the promotion check (`promotion.py`), which the
approval sensor and the promotion asset both call.
"""

from __future__ import annotations

from typing import Any

from mlops_core.governance.audit import record_hash
from mlops_core.governance.identity import Caller, users_for
from mlops_core.governance.policy import Policy


def caller_of(principal: str) -> Caller:
    kind, _, name = principal.partition(":")
    return Caller(kind, name)


def staging_problem(policy: Policy, results: list[dict[str, Any]], target: str) -> str | None:
    """Why `results` (oldest first) do not show a passed staging of `target`, or None.

    Only results judged by thresholds at least as strict as the policy's staging
    minimums, from runs that did not reconfigure resources at launch, count; the
    newest of those decides, and its numbers are re-judged.
    """
    if not results:
        return (
            f"{target} has not passed staging: no staging result in the approvals store; "
            "materialize its staging_deployment"
        )
    minimums = policy.staging_minimums
    counted = [
        r
        for r in results
        if not minimums.weaker(float(r["slo_p99_ms"]), int(r["load_requests"]))
        and not r.get("launch_overrides")
    ]
    if not counted:
        last = results[-1]
        short = minimums.weaker(float(last["slo_p99_ms"]), int(last["load_requests"]))
        why = "; ".join(short) or f"resources reconfigured at launch: {last['launch_overrides']}"
        return (
            f"no staging result of {target} counts: each was judged by thresholds weaker than "
            f"the policy minimums or launched with reconfigured resources (newest: {why})"
        )
    last = counted[-1]
    checks = dict(last.get("checks") or {})
    if last.get("outcome") != "passed" or not checks or not all(checks.values()):
        failed = ", ".join(k for k, ok in checks.items() if not ok) or "none recorded"
        return (
            f"{target} has not passed staging (run {last.get('run_id', '?')}: outcome "
            f"{last.get('outcome')!r}, failed checks: {failed})"
        )
    if not float(last["p99_ms"]) <= float(last["slo_p99_ms"]):
        return f"{target} staging p99 {last['p99_ms']} ms is over its SLO {last['slo_p99_ms']} ms"
    return None


def duty_problem(
    policy: Policy, registration: dict[str, Any] | None, user: str, principal: str, target: str
) -> str | None:
    """Why `user` (calling as `principal`) may not approve `target`, by separation of duties."""
    if registration is None:
        return (
            f"{target} has no registration record in the approvals store, so who trained and "
            "registered it is unknown; register it through the registered_model asset"
        )
    if not policy.separation_of_duties:
        return None
    for role, label in (("trained_by", "trained"), ("registered_by", "registered")):
        who = str(registration.get(role) or "")
        if not who:
            return f"{target}: its registration record does not say who {label} it"
        if who == principal or user in users_for(policy, caller_of(who)):
            return (
                f"{user} ({principal}) {label} {target} (as {who}); separation of duties: "
                "someone else must approve it"
            )
    return None


def audit_problem(audit: Any, approval: dict[str, Any]) -> str | None:
    """Why the audit entry the approval record names is missing, altered or a mismatch."""
    seq, target = approval.get("audit_seq"), f"{approval['model_name']}:{approval['dev_version']}"
    if not seq:
        return f"the approval of {target} names no audit record: it was never completed"
    found = next((r for r in audit.read(newest_first=True) if r.get("seq") == seq), None)
    if found is None:
        return f"the approval of {target} names audit record {seq}, which is not in the trail"
    if record_hash(found) != found.get("hash") or found.get("hash") != approval.get("audit_hash"):
        return f"audit record {seq} of the approval of {target} was altered"
    expected = {
        "action": "approve" if approval["decision"] == "approved" else "reject",
        "actor": approval["user"],
        "target": target,
        "environment": approval["environment"],
        "outcome": "succeeded",
        "caller": approval["caller"],
        "policy_hash": approval["policy_hash"],
    }
    wrong = [key for key, value in expected.items() if found.get(key) != value]
    if (found.get("details") or {}).get("approval_id") != approval["approval_id"]:
        wrong.append("approval_id")
    if wrong:
        return f"audit record {seq} does not match the approval of {target}: {', '.join(wrong)}"
    return None
