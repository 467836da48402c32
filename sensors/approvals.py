"""Approval sensor: a verified approval record requests the promotion run.

Reads approvals from the approvals store (written by `mlops approve`), never
registry tags, and requests one run of promotion + production deployment per
approval that passes `verify_promotion` under the policy in force: the same
check the promotion asset repeats when it runs. An approval that fails it
requests nothing; the skip reason says why (the sensor only decides: audit
records are written by runs). The run key is the approval id, so one approval
never launches two runs, whatever the cursor; the cursor only skips approvals
already requested.
"""

import json

import dagster as dg

from mlops_core.spec import ScenarioSpec
from resources.approvals_store import ApprovalStore
from resources.governance import Governance
from resources.registry import ModelRegistry


def build_approval_sensor(spec: ScenarioSpec, job_name: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{spec.name}_approval_sensor",
        job_name=job_name,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches the approvals store (never registry tags). Requests a promotion "
        f"and blue/green deployment of {spec.model_name} for each approval that passes "
        "verify_promotion under the policy in force (one run per approval id).",
    )
    def approval_sensor(
        context: dg.SensorEvaluationContext,
        registry: ModelRegistry,
        approvals: ApprovalStore,
        governance: Governance,
    ):
        from mlops_core.governance import PolicyError, PolicyOverrideRefused
        from mlops_core.governance.promotion import promotable

        try:
            policy = governance.decision_policy()
        except (PolicyOverrideRefused, PolicyError) as err:
            return dg.SkipReason(f"no promotion of {spec.model_name}: {err}")
        passing, refused = promotable(
            approvals, registry, policy, governance.audit(), spec.model_name
        )
        for check in refused:
            context.log.warning(f"approval not promotable: {check.reason}")
        seen = set(json.loads(context.cursor)) if context.cursor else set()
        waiting = [c.approval for c in passing if c.approval is not None]
        new = [a for a in waiting if a["approval_id"] not in seen]
        if not new:
            why = "; ".join(c.reason for c in refused)
            return dg.SkipReason(
                f"no new verified approval of {spec.model_name}" + (f" ({why})" if why else "")
            )
        op = f"{spec.name}__promoted_model"
        requests = [
            dg.RunRequest(
                run_key=f"promote-{a['approval_id']}",
                run_config={"ops": {op: {"config": {"dev_version": a["dev_version"]}}}},
                tags={
                    "scenario": spec.name,
                    "mlops/approval_id": a["approval_id"],
                    "mlops/approved_by": a["user"],
                    "mlops/dev_version": a["dev_version"],
                },
            )
            for a in new
        ]
        # Keep only ids still waiting: the cursor stays small as approvals get promoted.
        cursor = sorted({a["approval_id"] for a in waiting})
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return approval_sensor
