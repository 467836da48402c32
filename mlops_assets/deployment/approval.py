"""Human-in-the-loop approval of a staged model version, launched from the UI with config.

`record_decision` is the one code path for the CLI (`mlops approve/reject`)
and the UI (the `approval` asset, launched with config): a version must have
passed staging before anyone may approve it; the persona policy decides who
may; every decision, refusal included, lands in the audit trail.
"""

from typing import Literal

import dagster as dg

from mlops_assets import naming
from mlops_core.governance.decisions import ApprovalRefused, record_decision
from mlops_core.spec import ScenarioSpec
from resources.governance import Governance
from resources.registry import ModelRegistry


class ApprovalConfig(dg.Config):
    """Fill these in the Launchpad: who decides, on which version, and why."""

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
    ) -> dg.MaterializeResult:
        """A person's approve/reject decision on a staged version (launch with config)."""
        from mlops_core.governance import PermissionDenied

        missing = [f for f in ("version", "user", "reason") if not getattr(config, f).strip()]
        if missing:
            raise dg.Failure(
                f"set {missing} in the launch config: version to decide on, your user id "
                "(from the RBAC policy) and the reason; e.g. `mlops approve "
                f"{spec.model_name} 3 --as priya --reason ...` does the same from a shell"
            )
        try:
            result = record_decision(
                registry, governance, spec.model_name, config.version, config.user,
                config.decision, config.reason,
            )  # fmt: skip
        except (PermissionDenied, ApprovalRefused, ValueError) as err:
            raise dg.Failure(str(err)) from err
        context.log.info(f"{config.user} {config.decision}d {spec.model_name} v{config.version}")
        return dg.MaterializeResult(
            metadata={k: v for k, v in result.items() if isinstance(v, str | int | float)}
        )

    return approval
