"""Approval sensor: a recorded human approval requests the promotion run.

Reads the dev registry's approval tags (written by `mlops approve` or the
`approval` asset) and requests one run of promotion + production deployment
per approval. The run key is the approval id, so one approval never launches
two runs, whatever the cursor; the cursor only skips approvals already seen.
"""

import json

import dagster as dg

from mlops_core.spec import ScenarioSpec
from resources.registry import ModelRegistry


def build_approval_sensor(spec: ScenarioSpec, job_name: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{spec.name}_approval_sensor",
        job_name=job_name,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Promote and deploy {spec.model_name} when a person approves a version.",
    )
    def approval_sensor(context: dg.SensorEvaluationContext, registry: ModelRegistry):
        from mlops_core.governance import approved_unpromoted

        seen = set(json.loads(context.cursor)) if context.cursor else set()
        waiting = [r for r in approved_unpromoted(registry, spec.model_name) if r["approval_id"]]
        new = [r for r in waiting if r["approval_id"] not in seen]
        if not new:
            return dg.SkipReason(f"no new approval of {spec.model_name}")
        requests = [
            dg.RunRequest(
                run_key=f"promote-{r['approval_id']}",
                run_config={
                    "ops": {
                        f"{spec.name}__promoted_model": {"config": {"dev_version": r["version"]}}
                    }
                },
                tags={
                    "scenario": spec.name,
                    "mlops/approval_id": r["approval_id"],
                    "mlops/approved_by": r["approval_by"],
                    "mlops/dev_version": r["version"],
                },
            )
            for r in new
        ]
        # Keep only ids still waiting: the cursor stays small as approvals get promoted.
        cursor = sorted({r["approval_id"] for r in waiting})
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return approval_sensor
