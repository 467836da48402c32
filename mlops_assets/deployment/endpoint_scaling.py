"""Generic endpoint scaling: the run that acts on the scaling sensor's decision.

The sensor (`sensors/infra.py`) reads one `endpoint_health` result and asks for
a worker count; this run does everything with side effects, so a tick never
scales, audits or notifies:

- the persona policy must let `governance.monitoring_user` `scale_endpoint`
  in prod; a refusal is audited as `denied`, told to the owners, and fails the run;
- the endpoint is scaled to an absolute count, so a retried run does not scale twice
  (it finds the endpoint already there and only repeats the notification);
- success and failure are audited, then the infrastructure owners are notified.

A target equal to the observed count means a breach with no worker left to add:
the run tells the owners the endpoint is at its limit and changes nothing.
"""

import dagster as dg

from mlops_assets import naming
from mlops_core.naming import endpoint_scaling_job_name
from mlops_core.spec import ScenarioSpec
from resources.endpoint import EndpointError, OnlineEndpoints
from resources.governance import Governance
from resources.notify import Notifier

AUDIENCE = "platform-support"


class ScalingConfig(dg.Config):
    target_workers: int
    from_workers: int
    """Workers the health result observed; the sensor's decision is relative to it."""
    max_workers: int
    reason: str
    health_storage_id: int
    """The `endpoint_health` materialization this decision was made on."""


def build_endpoint_scaling(spec: ScenarioSpec) -> dg.AssetsDefinition:
    endpoint = spec.online_endpoint

    @dg.asset(
        key=naming.key(spec.name, "endpoint_scaling"),
        deps=[naming.key(spec.name, "endpoint_health")],
        group_name=naming.DEPLOYMENT,
        kinds={"starlette"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def endpoint_scaling(
        context: dg.AssetExecutionContext,
        config: ScalingConfig,
        endpoints: OnlineEndpoints,
        governance: Governance,
        notifier: Notifier,
    ) -> dg.MaterializeResult:
        """The online endpoint's worker count, changed on an endpoint health decision."""
        before, target = config.from_workers, config.target_workers
        meta = {
            "endpoint": endpoint,
            "from_workers": before,
            "to_workers": target,
            "reason": config.reason,
            "health_storage_id": config.health_storage_id,
        }
        if target == before:
            notifier.notify(
                topic="infra", severity="critical", title=f"{endpoint} at its limit",
                text=f"{config.reason}; already at {before} worker(s) (max {config.max_workers}).",
                facts={"workers": before, "max_workers": config.max_workers},
                audience=AUDIENCE,
            )  # fmt: skip
            return dg.MaterializeResult(metadata={**meta, "outcome": "at_limit"})
        current = endpoints.get(endpoint).workers
        if current != target:
            scale(endpoint, current, target, config.reason, endpoints, governance, notifier)
        else:
            context.log.info(f"{endpoint} already runs {target} worker(s): a retried run")
        direction = "out" if target > before else "in"
        notifier.notify(
            topic="infra",
            severity="warning" if target > before else "info",
            title=f"{endpoint} scaled {direction} to {target} worker(s)",
            text=config.reason,
            facts={"from": before, "to": target},
            audience=AUDIENCE,
        )
        return dg.MaterializeResult(metadata={**meta, "outcome": f"scaled_{direction}"})

    return endpoint_scaling


def scale(
    endpoint: str,
    before: int,
    target: int,
    reason: str,
    endpoints: OnlineEndpoints,
    governance: Governance,
    notifier: Notifier,
) -> None:
    """Scale under the persona policy, with an audit record whatever the outcome."""
    actor, audit, target_id = governance.monitoring_user, governance.audit(), f"{endpoint}:workers"
    decision = governance.decision_policy().allowed(actor, "scale_endpoint", "prod")
    signed = governance.signature()
    if not decision.allowed:
        audit.record("scale", actor, target_id, "prod", "denied", decision.reason, **signed)
        notifier.notify(
            topic="infra", severity="critical", title=f"{endpoint}: scaling denied",
            text=f"{reason}; {decision.reason}.", facts={"from": before, "to": target},
            audience=AUDIENCE,
        )  # fmt: skip
        raise dg.Failure(f"scaling {endpoint} to {target} denied: {decision.reason}")
    try:
        endpoints.scale(endpoint, target)
    except EndpointError as err:
        audit.record("scale", actor, target_id, "prod", "failed", str(err), **signed)
        raise
    audit.record(
        "scale", actor, target_id, "prod", "succeeded", reason=reason,
        details={"from": before, "to": target}, persona=decision.persona, **signed,
    )  # fmt: skip


def build_endpoint_scaling_defs(spec: ScenarioSpec) -> dg.Definitions:
    """The scaling asset and the per-scenario job the scaling sensor requests."""
    asset = build_endpoint_scaling(spec)
    job = dg.define_asset_job(
        endpoint_scaling_job_name(spec.name),
        selection=dg.AssetSelection.assets(asset.key),
        description=f"{spec.name}: scale {spec.online_endpoint} as the scaling sensor decided",
        tags=naming.scenario_tags(spec.name),
    )
    return dg.Definitions(assets=[asset], jobs=[job])
