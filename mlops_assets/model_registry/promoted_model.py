"""Generic promotion: an approved dev version copied into the prod registry as `champion`.

Requested by the approval sensor (one run per approval id) or launched by
hand. The automation identity must hold `promote_model` in prod under the
persona policy. The copy is a new prod version whose tags lead back to the
dev version and its approval; the dev version is tagged with the prod version
so the same approval is never promoted twice.
"""

import dagster as dg

from mlops_assets import naming
from mlops_core.spec import ScenarioSpec
from resources.governance import Governance
from resources.registry import ModelRegistry

PROMOTED_TAG = "mlops.promoted_to_prod_version"


class PromotionConfig(dg.Config):
    dev_version: str = ""
    """Empty: the oldest approved version not yet promoted."""


def build_promoted_model(spec: ScenarioSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=naming.key(spec.name, "promoted_model"),
        deps=[naming.key(spec.name, "approval")],
        group_name=naming.MODEL_REGISTRY,
        kinds={"mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def promoted_model(
        context: dg.AssetExecutionContext,
        config: PromotionConfig,
        registry: ModelRegistry,
        governance: Governance,
    ) -> dg.MaterializeResult:
        """The approved model in the prod registry, aliased `champion`."""
        from mlops_core.governance import PermissionDenied, approved_unpromoted

        version = config.dev_version
        if not version:
            waiting = approved_unpromoted(registry, spec.model_name)
            if not waiting:
                raise dg.Failure(f"no approved, unpromoted version of {spec.model_name}")
            version = waiting[0]["version"]
        dev = registry.client("dev").get_model_version(spec.model_name, version)
        tags = dict(dev.tags or {})
        if tags.get("mlops.approval") != "approved":
            raise dg.Failure(
                f"{spec.model_name} v{version} is not approved "
                f"(mlops.approval={tags.get('mlops.approval', 'none')}); nothing promoted"
            )
        if tags.get(PROMOTED_TAG):
            raise dg.Failure(f"v{version} is already prod version {tags[PROMOTED_TAG]}")
        actor = governance.automation_user
        audit = governance.audit()
        target = f"{spec.model_name}:{version}"
        try:
            decision = governance.policy().require(actor, "promote_model", "prod")
        except PermissionDenied as err:
            audit.record("promote", actor, target, "prod", "denied", str(err))
            raise dg.Failure(str(err)) from err
        previous = registry.version_by_alias(spec.model_name, naming.CHAMPION_ALIAS, "prod")
        prod = registry.promote(
            spec.model_name,
            version,
            tags={
                "mlops.approval_id": tags.get("mlops.approval_id", ""),
                "mlops.approved_by": tags.get("mlops.approval_by", ""),
                "mlops.promoted_by_dagster_run": context.run.run_id,
            },
        )
        registry.client("dev").set_model_version_tag(
            spec.model_name, version, PROMOTED_TAG, str(prod.version)
        )
        audit.record(
            "promote", actor, target, "prod", "succeeded",
            reason=f"approved by {tags.get('mlops.approval_by')}: "
            f"{tags.get('mlops.approval_reason')}",
            details={"prod_version": str(prod.version),
                     "previous_champion": str(previous.version) if previous else ""},
            persona=decision.persona,
        )  # fmt: skip
        return dg.MaterializeResult(
            metadata={
                "model_name": spec.model_name,
                "dev_version": int(version),
                "prod_version": int(prod.version),
                "alias": naming.CHAMPION_ALIAS,
                "previous_champion": int(previous.version) if previous else 0,
                "approved_by": tags.get("mlops.approval_by", ""),
                "model_uri": f"models:/{spec.model_name}@{naming.CHAMPION_ALIAS} (prod)",
            }
        )

    return promoted_model
