"""Generic evaluation gates: champion/challenger and responsible-AI slices, both blocking.

Scores this run's candidate and the production champion on the holdout split
of the candidate's own training set version, so both are judged on the same
rows. The champion/challenger check passes when the challenger is not worse by
more than the spec's tolerance (the first model passes); the slice check, when
the spec has a slice gate, bounds the metric's gap across one attribute. A
failed check stops registration in the run; the verdict is an
`EvaluationVerdict` that registration reads, and is tagged on the MLflow run.
"""

import dagster as dg

from mlops_assets import naming
from mlops_assets.handoff import upstream_result
from mlops_core.results import CandidateModel, EvaluationVerdict
from mlops_core.spec import ScenarioSpec
from resources.lake import DataLake
from resources.registry import ModelRegistry

CHAMPION_CHECK = "no_worse_than_champion"
SLICE_CHECK = "slice_gap"


class EvaluationConfig(dg.Config):
    """Gate thresholds; empty means the scenario spec's defaults."""

    tolerance: float | None = None
    max_slice_gap: float | None = None


def slices_markdown(slices: dict[str, float], metric: str) -> str:
    import pandas as pd

    frame = pd.DataFrame(sorted(slices.items()), columns=["segment", metric])
    return frame.to_markdown(index=False, floatfmt=".4f")


def build_model_evaluation(spec: ScenarioSpec) -> dg.AssetsDefinition:
    candidate_key = naming.key(spec.name, "candidate_model")
    eval_key = naming.key(spec.name, "model_evaluation")
    model, gate = spec.model, spec.model.slices
    metric = f"{model.metric}_holdout"
    check_specs = [
        dg.AssetCheckSpec(
            CHAMPION_CHECK,
            asset=eval_key,
            blocking=True,
            description=f"{model.metric} not worse than the champion's beyond the tolerance",
        )
    ]
    if gate is not None:
        check_specs.append(
            dg.AssetCheckSpec(
                SLICE_CHECK,
                asset=eval_key,
                blocking=True,
                description=f"{model.metric} gap across {gate.attribute} within the maximum",
            )
        )

    @dg.asset(
        key=eval_key,
        deps=[candidate_key],
        group_name=naming.MODEL_DEVELOPMENT,
        kinds={*model.kinds, "mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
        check_specs=check_specs,
    )
    def model_evaluation(
        context: dg.AssetExecutionContext,
        config: EvaluationConfig,
        lake: DataLake,
        registry: ModelRegistry,
    ) -> dg.MaterializeResult:
        """The candidate judged against the production champion and across segments."""
        tolerance = model.tolerance if config.tolerance is None else config.tolerance
        candidate = upstream_result(context, candidate_key, CandidateModel)
        holdout = spec.data.read_split(lake, f"{candidate.dataset_root}/holdout.parquet")
        challenger = model.load(
            registry.download_artifacts(registry.logged_model_uri(candidate.model_id))
        )
        challenger_score = model.score(challenger, holdout)[model.metric]
        champion = registry.version_by_alias(spec.model_name, naming.CHAMPION_ALIAS, "prod")
        champion_score = None
        if champion is not None:
            served = model.load(registry.download_model(spec.model_name, champion.version, "prod"))
            champion_score = model.score(served, holdout)[model.metric]
        beats = champion_score is None or model.better_or_close(
            challenger_score, champion_score, tolerance
        )
        reasons = []
        if not beats:
            reasons.append(
                f"challenger {metric} {challenger_score:.4f} is worse than champion "
                f"v{champion.version} {champion_score:.4f} by more than {tolerance}"
            )
        slices, gap, max_gap, fair = {}, 0.0, None, True
        if gate is not None:
            max_gap = gate.max_gap if config.max_slice_gap is None else config.max_slice_gap
            slices = gate.score_slices(challenger, holdout, gate.attribute)
            gap = max(slices.values()) - min(slices.values()) if slices else 0.0
            fair = gap <= max_gap
            if not fair:
                worst = min(slices, key=slices.get)
                reasons.append(
                    f"{model.metric} gap across {gate.attribute} is {gap:.4f} > {max_gap} "
                    f"(worst segment {worst}: {slices[worst]:.4f})"
                )
        comparison = (
            "first model: no champion to compare"
            if champion is None
            else f"{metric} {challenger_score:.4f} vs champion v{champion.version} "
            f"{champion_score:.4f} (tolerance {tolerance})"
        )
        verdict = EvaluationVerdict(
            verdict="approved" if beats and fair else "rejected",
            reason="; ".join(reasons) or comparison,
            mlflow_run_id=candidate.mlflow_run_id,
            model_id=candidate.model_id,
            metric=model.metric,
            challenger_score=challenger_score,
            dataset_version=candidate.dataset_version,
            partition_range=candidate.partition_range,
            tolerance=tolerance,
            champion_version=str(champion.version) if champion else "none",
            champion_score=champion_score,
            slice_gap=gap,
            max_slice_gap=max_gap,
        )
        context.log.info(f"evaluation verdict: {verdict.verdict} ({verdict.reason})")
        client = registry.client("dev")
        client.log_metric(candidate.mlflow_run_id, f"slice_gap_{model.metric}", gap)
        if champion_score is not None:
            client.log_metric(candidate.mlflow_run_id, f"champion_{metric}", champion_score)
        client.set_tag(candidate.mlflow_run_id, "mlops.verdict", verdict.verdict)
        client.set_tag(candidate.mlflow_run_id, "mlops.verdict_reason", verdict.reason[:5000])
        client.set_tag(candidate.mlflow_run_id, "mlops.evaluation_run", context.run.run_id)

        common = {
            f"challenger_{metric}": challenger_score,
            f"champion_{metric}": champion_score if champion_score is not None else float("nan"),
            "champion_version": verdict.champion_version,
            "tolerance": tolerance,
        }
        checks = [
            dg.AssetCheckResult(
                check_name=CHAMPION_CHECK, passed=beats, description=comparison, metadata=common
            )
        ]
        extras: dict = {}
        if gate is not None:
            extras = {
                "slices": dg.MetadataValue.md(slices_markdown(slices, model.metric)),
                "max_slice_gap": max_gap,
                "slice_gap": gap,
            }
            checks.append(
                dg.AssetCheckResult(
                    check_name=SLICE_CHECK,
                    passed=fair,
                    description=f"{model.metric} gap across {gate.attribute}: {gap:.4f} "
                    f"(max {max_gap})",
                    metadata=extras,
                )
            )
        return dg.MaterializeResult(
            metadata={**verdict.to_metadata(), **common, **extras}, check_results=checks
        )

    return model_evaluation
