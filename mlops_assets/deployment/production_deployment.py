"""Generic production deployment: blue/green with a canary and automatic rollback.

The prod registry's `champion` goes into the idle slot of the online endpoint
(blue or green), takes `canary_percent` of live traffic, and is probed pinned
to its slot (smoke, error rate, p99 latency). If the probe passes, it takes
all traffic and the old slot stays deployed at 0% for a fast manual rollback.
If not, traffic returns to the previous slot, the `champion` alias returns to
the version it serves, and the rollback is recorded in the audit trail and in
a failed `canary` check. Traffic changes are config reloads of the running
server, so no request fails during the switch.
"""

import dagster as dg

from mlops_assets import naming
from mlops_assets.deployment.staging_deployment import probe_deployment, sample_requests
from mlops_core.naming import version_label
from mlops_core.spec import ScenarioSpec
from resources.endpoint import EndpointError, EndpointInfo, OnlineEndpoints
from resources.governance import Governance
from resources.lake import DataLake
from resources.registry import ModelRegistry

SLOTS = ("blue", "green")


class ProductionConfig(dg.Config):
    canary_percent: int = 10
    probe_requests: int = 200
    max_error_rate: float = 0.0
    slo_p99_ms: float = 250.0


def slots_table(info: EndpointInfo) -> str:
    """Which version each slot serves and its share of traffic, as a page shows it."""
    rows = ["| slot | model | prod version | traffic |", "|---|---|---|---|"]
    for slot, deployment in sorted(info.deployments.items()):
        rows.append(
            f"| {slot} | {deployment.get('model_name', '?')} | "
            f"v{deployment.get('model_version', '?')} | {info.traffic.get(slot, 0)}% |"
        )
    return "\n".join(rows)


def build_production_deployment(spec: ScenarioSpec) -> dg.AssetsDefinition:
    key = naming.key(spec.name, "production_deployment")

    @dg.asset(
        key=key,
        deps=[naming.key(spec.name, "promoted_model")],
        group_name=naming.DEPLOYMENT,
        kinds={"starlette", "mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
        check_specs=[dg.AssetCheckSpec("canary", asset=key, blocking=True)],
    )
    def production_deployment(
        context: dg.AssetExecutionContext,
        config: ProductionConfig,
        lake: DataLake,
        registry: ModelRegistry,
        endpoints: OnlineEndpoints,
        governance: Governance,
    ) -> dg.MaterializeResult:
        """The online endpoint serving the prod champion, switched blue/green."""
        champion = registry.version_by_alias(spec.model_name, naming.CHAMPION_ALIAS, "prod")
        if champion is None:
            raise dg.Failure(f"no '{naming.CHAMPION_ALIAS}' in the prod registry to deploy")
        version = str(champion.version)
        actor, audit = governance.automation_user, governance.audit()
        governance.decision_policy().require(actor, "deploy_endpoint", "prod")
        signed = governance.signature()
        model_dir = registry.download_model(spec.model_name, version, "prod")
        name = spec.online_endpoint
        try:
            before = endpoints.get(name)
        except EndpointError:
            before = None
        live = before.live_deployment() if before else None
        slot = SLOTS[1] if live == SLOTS[0] else SLOTS[0]
        source = (champion.tags or {}).get("mlops.source_version")  # set by registry.promote
        endpoints.create_or_update_deployment(
            name, slot, model_dir, spec.model_name, version, registry="prod", source_version=source
        )
        if live:
            canary = {live: 100 - config.canary_percent, slot: config.canary_percent}
            endpoints.set_traffic(name, canary)
            context.log.info(f"canary: {canary} on {name}")
        info = endpoints.get(name)
        base, api_key = info.scoring_uri.rsplit("/", 1)[0], endpoints.get_keys(name)["primary"]

        frame = sample_requests(spec, lake, (champion.tags or {}).get("mlops.dataset_root", ""))
        smoke, probe = probe_deployment(
            spec, model_dir, frame, base, api_key, slot, config.probe_requests, concurrency=4
        )
        healthy = (
            smoke["passed"]
            and probe["error_rate"] <= config.max_error_rate
            and probe["p99_ms"] <= config.slo_p99_ms
        )
        target = f"{spec.model_name}:{version}"
        shown = version_label(version, "prod", source)
        details = {
            "endpoint": name, "slot": slot, "previous_slot": live or "",
            "registry": "prod", "prod_version": version, "dev_version": source or "", **probe,
        }  # fmt: skip
        if healthy:
            endpoints.set_traffic(name, {slot: 100})
            audit.record("deploy", actor, target, "prod", "succeeded",
                         reason=f"{shown} in {slot} takes 100% of {name}", details=details,
                         **signed)  # fmt: skip
            rolled_back, serving = False, version
        elif live:
            endpoints.set_traffic(name, {live: 100})
            serving = str(info.deployments[live]["model_version"])
            registry.client("prod").set_registered_model_alias(
                spec.model_name, naming.CHAMPION_ALIAS, serving
            )
            why = (
                f"canary failed (smoke {smoke['passed']}, error rate {probe['error_rate']:.3f}, "
                f"p99 {probe['p99_ms']:.1f} ms vs SLO {config.slo_p99_ms}); "
                f"traffic back to {live} (prod v{serving})"
            )
            audit.record("rollback", actor, target, "prod", "succeeded", why, details, **signed)
            context.log.warning(why)
            rolled_back = True
        else:
            # First deployment: nothing to return to. Take the slot out of service.
            endpoints.stop(name)
            audit.record("deploy", actor, target, "prod", "failed", "first deployment failed its "
                         "probe; endpoint stopped", details, **signed)  # fmt: skip
            raise dg.Failure(f"first deployment of {target} failed its probe: {probe} {smoke}")

        final = endpoints.get(name)
        metadata = {
            "endpoint": name,
            "serving": f"{spec.model_name} "
            + version_label(serving, "prod", source if serving == version else None),
            "model_uri": f"models:/{spec.model_name}/{serving} (prod registry)",
            "scoring_uri": dg.MetadataValue.url(final.scoring_uri or ""),
            "deployed_version": int(version),
            "serving_version": int(serving),
            "slot": slot,
            "slots": dg.MetadataValue.md(slots_table(final)),
            "traffic": dg.MetadataValue.json(final.traffic),
            "rolled_back": rolled_back,
            "probe_p99_ms": round(probe["p99_ms"], 2),
            "probe_error_rate": probe["error_rate"],
        }
        url = registry.version_url(spec.model_name, serving, "prod")
        if url:
            metadata["prod_version_page"] = dg.MetadataValue.url(url)
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                dg.AssetCheckResult(
                    check_name="canary",
                    passed=healthy,
                    description="rolled back to the previous deployment" if rolled_back else None,
                    metadata={"smoke": smoke["passed"], **probe, "slo_p99_ms": config.slo_p99_ms},
                )
            ],
        )

    return production_deployment
