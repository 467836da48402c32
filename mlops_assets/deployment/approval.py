"""The human approval gate in the UI: shows a version's decision, never takes one.

The Dagster UI has no authenticated identity: whoever can launch a run can
type any `user` into a launch config. So this asset does not decide. Launched
with a `user` or a `reason` it refuses, audits the attempt (with the run
worker's identity as caller) and says to use `mlops approve`, whose caller
comes from the OS account or Entra ID. Launched without them it materializes
the approvals store's view of the version (`version`, or the dev `challenger`):
its decision, who made it, and whether promotion would accept it now and why
not, which is what the promotion asset will check.
"""

from typing import Literal

import dagster as dg

from mlops_assets import naming
from mlops_core.spec import ScenarioSpec
from resources.approvals_store import ApprovalStore
from resources.governance import Governance
from resources.identity import Identity
from resources.registry import ModelRegistry


class ApprovalConfig(dg.Config):
    """Leave `user` and `reason` empty: decisions are taken with `mlops approve`."""

    version: str = ""
    user: str = ""
    decision: Literal["approve", "reject"] = "approve"
    reason: str = ""


def build_approval(spec: ScenarioSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=naming.key(spec.name, "approval"),
        deps=[naming.key(spec.name, "staging_deployment")],
        group_name=naming.DEPLOYMENT,
        kinds={"mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def approval(
        context: dg.AssetExecutionContext,
        config: ApprovalConfig,
        registry: ModelRegistry,
        governance: Governance,
        approvals: ApprovalStore,
        identity: Identity,
    ) -> dg.MaterializeResult:
        """The approval status of a staged version (decide with `mlops approve`)."""
        from mlops_core.governance import PolicyError, PolicyOverrideRefused, verify_promotion

        version = config.version.strip()
        if not version:
            mv = registry.version_by_alias(spec.model_name, naming.CHALLENGER_ALIAS, "dev")
            if mv is None:
                raise dg.Failure(f"{spec.model_name} has no '{naming.CHALLENGER_ALIAS}' to show")
            version = str(mv.version)
        target = f"{spec.model_name}:{version}"
        command = f"mlops approve {spec.model_name} {version} --reason '...'"
        if config.user.strip() or config.reason.strip():
            why = (
                "the Dagster UI has no authenticated identity, so a launch config cannot make "
                f"an approval decision (user {config.user.strip() or '(none)'!r} would be "
                f"self-declared); run `{command}` where your OS account or Entra ID is mapped "
                "in the RBAC policy"
            )
            details = {"via": "dagster launch config", "claimed_user": config.user.strip(),
                       "dagster_run_id": context.run.run_id}  # fmt: skip
            governance.audit().record(
                config.decision, "dagster-ui", target, "prod", "denied", why, details,
                caller=identity.caller().principal, policy_hash=governance.policy().sha256,
            )  # fmt: skip
            raise dg.Failure(why)

        record = approvals.decision(spec.model_name, version) or {}
        try:
            policy = governance.decision_policy()
            check = verify_promotion(
                approvals, registry, policy, governance.audit(), spec.model_name, version
            )
            promotable, why = check.ok, check.reason
        except (PolicyOverrideRefused, PolicyError) as err:
            promotable, why = False, str(err)
        context.log.info(f"{target}: {record.get('decision', 'undecided')}; promotable: {why}")
        return dg.MaterializeResult(
            metadata={
                "model_name": spec.model_name,
                "version": version,
                "decision": record.get("decision", "undecided"),
                "decided_by": record.get("user", ""),
                "persona": record.get("persona", ""),
                "caller": record.get("caller", ""),
                "decided_at": record.get("decided_at", ""),
                "approval_id": record.get("approval_id", ""),
                "audit_seq": int(record.get("audit_seq") or 0),
                "promotable": promotable,
                "promotion_check": why,
                "decide_with": "" if record else command,
            }
        )

    return approval
