"""Generic promotion: an approved dev version copied into the prod registry as `champion`.

Requested by the approval sensor (one run per approval id) or launched by
hand. At promotion time it re-verifies the approval with the same function the
sensor uses (`mlops_core.governance.promotion.verify_promotion`): the approval
record in the approvals store, the approver's identity and persona under the
policy in force, a passed staging result for this exact version by thresholds
no weaker than the policy minimums, separation of duties, and the approval's
audit entry. Registry tags prove nothing. A refusal is a `dg.Failure` naming
the reason and an audit record; so is a run whose launch config reconfigured a
governance resource, and a policy swapped in through `$MLOPS_RBAC_POLICY`. The
automation identity must hold `promote_model` in prod. The promotion is claimed
in the store first (one approval, one promotion); the copy is a new prod
version whose tags lead back to the dev version and its approval.
"""

import dagster as dg

from mlops_assets import naming
from mlops_assets.deployment.launch_guard import reconfigured_resources
from mlops_core.spec import ScenarioSpec
from resources.approvals_store import ApprovalStore
from resources.governance import Governance
from resources.identity import Identity
from resources.registry import ModelRegistry

PROMOTED_TAG = "mlops.promoted_to_prod_version"


class PromotionConfig(dg.Config):
    dev_version: str = ""
    """Empty: the oldest approved version not yet promoted that passes verification."""


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
        approvals: ApprovalStore,
        identity: Identity,
    ) -> dg.MaterializeResult:
        """The approved model in the prod registry, aliased `champion`."""
        from mlops_core.governance import AlreadyRecorded, PermissionDenied, PolicyOverrideRefused
        from mlops_core.governance.promotion import promotable, verify_promotion

        actor, audit, caller = governance.automation_user, governance.audit(), identity.caller()
        target = f"{spec.model_name}:{config.dev_version or '?'}"

        def refuse(reason: str, policy_hash: str, persona: str = "") -> dg.Failure:
            audit.record("promote", actor, target, "prod", "denied", reason,
                         {"dagster_run_id": context.run.run_id}, persona,
                         caller=caller.principal, policy_hash=policy_hash)  # fmt: skip
            return dg.Failure(f"not promoted: {reason}")

        try:
            policy = governance.decision_policy()
        except PolicyOverrideRefused as err:
            raise refuse(str(err), err.policy.sha256) from err
        if overridden := reconfigured_resources(context.run.run_config):
            raise refuse(
                f"the launch config reconfigures {overridden}: a promotion runs only with the "
                "resources the deployment binds in code",
                policy.sha256,
            )
        try:
            decision = policy.require(actor, "promote_model", "prod")
        except PermissionDenied as err:
            raise refuse(str(err), policy.sha256) from err

        version = config.dev_version
        if not version:
            passing, refused = promotable(approvals, registry, policy, audit, spec.model_name)
            if not passing:
                why = "; ".join(c.reason for c in refused) or "no approval in the approvals store"
                raise refuse(f"no promotable approval of {spec.model_name}: {why}", policy.sha256)
            version = passing[0].approval["dev_version"]  # type: ignore[index]
            target = f"{spec.model_name}:{version}"
        check = verify_promotion(approvals, registry, policy, audit, spec.model_name, version)
        if not check.ok or check.approval is None:
            raise refuse(check.reason, policy.sha256, decision.persona)
        approval = check.approval
        try:
            approvals.claim_promotion(
                {"approval_id": approval["approval_id"], "model_name": spec.model_name,
                 "dev_version": version, "promoted_by": actor, "caller": caller.principal,
                 "dagster_run_id": context.run.run_id}
            )  # fmt: skip
        except AlreadyRecorded as err:  # a concurrent run claimed it first
            run = err.existing.get("dagster_run_id", "?")
            raise refuse(f"approval {approval['approval_id']} is promoted by run {run}",
                         policy.sha256, decision.persona) from err  # fmt: skip
        previous = registry.version_by_alias(spec.model_name, naming.CHAMPION_ALIAS, "prod")
        try:
            prod = registry.promote(
                spec.model_name,
                version,
                tags={
                    "mlops.approval_id": approval["approval_id"],
                    "mlops.approved_by": approval["user"],
                    "mlops.promoted_by_dagster_run": context.run.run_id,
                },
            )
        except Exception:
            approvals.release_promotion(approval["approval_id"])
            raise
        registry.client("dev").set_model_version_tag(
            spec.model_name, version, PROMOTED_TAG, str(prod.version)
        )  # display copy; the store's promotion claim is what counts
        audit.record(
            "promote", actor, target, "prod", "succeeded",
            reason=f"{check.reason}: {approval['reason']}",
            details={"prod_version": str(prod.version), "approval_id": approval["approval_id"],
                     "approval_audit_seq": approval["audit_seq"],
                     "previous_champion": str(previous.version) if previous else ""},
            persona=decision.persona, caller=caller.principal, policy_hash=policy.sha256,
        )  # fmt: skip
        links = {
            f"{stage}_version_page": dg.MetadataValue.url(url)
            for stage, v in (("dev", version), ("prod", str(prod.version)))
            if (url := registry.version_url(spec.model_name, v, stage))
        }
        return dg.MaterializeResult(
            metadata={
                "promoted": f"dev v{version} -> prod v{prod.version}",
                "model_name": spec.model_name,
                "dev_version": int(version),
                "prod_version": int(prod.version),
                "alias": naming.CHAMPION_ALIAS,
                "previous_champion": int(previous.version) if previous else 0,
                "approved_by": approval["user"],
                "approval_id": approval["approval_id"],
                "model_uri": f"models:/{spec.model_name}/{prod.version} (prod registry)",
                **links,
            }
        )

    return promoted_model
