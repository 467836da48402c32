"""Generic model registry stage: the evaluated candidate as a dev registry version.

`registered_model` registers only a candidate whose evaluation approved it.
The verdict is this run's own `EvaluationVerdict` (by run id, so a concurrent
training run cannot slip its evaluation in). In the run that evaluated it, a
failed blocking check already skips this asset; launched alone, it reads the
newest verdict and refuses with the reason, so a rejected challenger never
reaches the registry. Registering the same MLflow
run twice reuses its version (idempotent) instead of adding a duplicate.

Who trained it (the training run's `mlops.trained_by`, the identity that ran
training) and who registered it (this process's identity) go to the approvals
store, first record wins, and to the version's tags for display: separation of
duties at approval and promotion reads the store.
"""

from datetime import UTC, datetime

import dagster as dg

from mlops_assets import naming
from mlops_assets.handoff import upstream_result
from mlops_core.results import EvaluationVerdict, RegisteredVersion
from mlops_core.spec import ScenarioSpec
from resources.approvals_store import ApprovalStore
from resources.identity import Identity
from resources.registry import ModelRegistry


def build_registered_model(spec: ScenarioSpec) -> dg.AssetsDefinition:
    eval_key = naming.key(spec.name, "model_evaluation")

    @dg.asset(
        key=naming.key(spec.name, "registered_model"),
        deps=[eval_key],
        group_name=naming.MODEL_REGISTRY,
        kinds={"mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
    )
    def registered_model(
        context: dg.AssetExecutionContext,
        registry: ModelRegistry,
        approvals: ApprovalStore,
        identity: Identity,
    ) -> dg.MaterializeResult:
        """The approved challenger as a version of the dev registry, aliased `challenger`."""
        evaluation = upstream_result(context, eval_key, EvaluationVerdict)
        run_id = evaluation.mlflow_run_id
        if not evaluation.approved:
            raise dg.Failure(
                description=f"not registered: candidate run {run_id} was rejected: "
                f"{evaluation.reason}",
                metadata={"verdict": evaluation.verdict, "reason": evaluation.reason},
            )
        client = registry.client("dev")
        run_tags = client.get_run(run_id).data.tags
        lineage = {k: v for k, v in run_tags.items() if k.startswith("mlops.")}
        lineage["mlops.registered_by_dagster_run"] = context.run.run_id
        lineage["mlops.registered_by"] = identity.caller().principal
        lineage["mlops.mlflow_run_id"] = run_id
        lineage["mlops.dataset_version"] = evaluation.dataset_version
        lineage["mlops.evaluated_on"] = evaluation.dataset_version

        existing = [mv for mv in registry.versions(spec.model_name) if mv.run_id == run_id]
        if existing:
            version = existing[-1]
            client.set_registered_model_alias(
                spec.model_name, naming.CHALLENGER_ALIAS, version.version
            )
            context.log.info(f"run {run_id} is already version {version.version}; alias moved")
        else:
            version = registry.register(
                spec.model_name,
                # The artifact location, not models:/m-...: MLflow resolves the latter
                # through the process-global tracking URI, not this client's.
                model_uri=registry.logged_model_uri(evaluation.model_id),
                run_id=run_id,
                tags=lineage,
                alias=naming.CHALLENGER_ALIAS,
                model_id=evaluation.model_id,
            )
        who = approvals.record_registration(
            {
                "model_name": spec.model_name,
                "version": str(version.version),
                "mlflow_run_id": run_id,
                "trained_by": run_tags.get("mlops.trained_by", ""),
                "registered_by": lineage["mlops.registered_by"],
                "registered_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "dagster_run_id": context.run.run_id,
            }
        )
        registered = RegisteredVersion(
            model_name=spec.model_name,
            version=str(version.version),
            mlflow_run_id=run_id,
            dataset_version=evaluation.dataset_version,
            dataset_root=lineage.get("mlops.dataset_root", ""),
        )
        metadata = {
            **registered.to_metadata(),
            "alias": naming.CHALLENGER_ALIAS,
            "model_uri": f"models:/{spec.model_name}/{version.version}",
            f"challenger_{spec.model.metric}_holdout": evaluation.challenger_score,
            "lineage": dg.MetadataValue.json(lineage),
            "trained_by": who["trained_by"],
            "registered_by": who["registered_by"],
        }
        url = registry.version_url(spec.model_name, version.version)
        if url:
            metadata["registry_page"] = dg.MetadataValue.url(url)
        return dg.MaterializeResult(metadata=metadata)

    return registered_model
