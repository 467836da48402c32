"""Generic model development stage: candidate model and its evaluation gates.

Built per scenario from a `ScenarioSpec`:
- `candidate_model` runs the scenario's training entry point on the training
  compute resource (a Pipes subprocess locally, Azure ML in the cloud) and
  shows the MLflow run, metrics and plots.
- `model_evaluation` scores the candidate and the production champion on the
  same holdout and carries two blocking checks: champion/challenger (not worse
  than the champion by more than the spec's tolerance; the first model passes)
  and a responsible-AI slice gap. A failed gate stops registration in the run;
  the verdict and its reason are in the metadata and on the MLflow run.
"""

import json

import dagster as dg

from mlops_assets import naming
from mlops_assets.handoff import latest_metadata
from mlops_core.lineage import git_commit
from mlops_core.spec import ScenarioSpec
from mlops_core.training_io import STORAGE_OPTIONS_ENV
from resources.compute import TrainingCompute
from resources.lake import DataLake
from resources.registry import ModelRegistry

CHAMPION_CHECK = "no_worse_than_champion"
SLICE_CHECK = "slice_gap"


class TrainConfig(dg.Config):
    hyperparameters: dict[str, float] = {}


class EvaluationConfig(dg.Config):
    """Gate thresholds; empty means the scenario spec's defaults."""

    tolerance: float | None = None
    max_slice_gap: float | None = None


def png_markdown(title: str, png_b64: str) -> str:
    return f"![{title}](data:image/png;base64,{png_b64})"


def slices_markdown(slices: dict[str, float], metric: str) -> str:
    rows = [f"| segment | {metric} |", "|---|---|"]
    rows += [f"| {k} | {v:.4f} |" for k, v in sorted(slices.items())]
    return "\n".join(rows)


def build_candidate_model(spec: ScenarioSpec) -> dg.AssetsDefinition:
    training_key = naming.key(spec.name, spec.training_set_artifact)

    @dg.asset(
        key=naming.key(spec.name, "candidate_model"),
        deps=[training_key],
        group_name=naming.MODEL_DEVELOPMENT,
        kinds={*spec.kinds, "mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
        code_version=spec.code_version,
    )
    def candidate_model(
        context: dg.AssetExecutionContext,
        config: TrainConfig,
        lake: DataLake,
        registry: ModelRegistry,
        compute: TrainingCompute,
    ) -> dg.MaterializeResult:
        """A freshly trained model in an MLflow run of the dev registry, not yet judged."""
        manifest = lake.read_json(spec.manifest_path)
        experiment_id = registry.ensure_experiment(spec.model_name, "dev")
        tags = {
            "mlops.scenario": spec.name,
            "mlops.dagster_run_id": context.run.run_id,
            "mlops.partition_range": manifest["partition_range"],
            "mlops.code_version": spec.code_version,
            "mlops.git_commit": git_commit(),
        }
        params = {**spec.default_params, **config.hyperparameters}
        argv = [
            "--train-uri", lake.uri(spec.train_path),
            "--holdout-uri", lake.uri(spec.holdout_path),
            "--tracking-uri", registry.tracking_uri("dev"),
            "--experiment-id", experiment_id,
            "--run-name", f"{spec.name}-{context.run.run_id[:8]}",
            "--params", json.dumps(params),
            "--tags", json.dumps(tags),
        ]  # fmt: skip
        context.log.info(f"training {spec.model_name} on {manifest['partition_range']}")
        result = compute.run(
            context,
            spec.train_module,
            argv,
            env={STORAGE_OPTIONS_ENV: json.dumps(lake.storage_options())},
        )
        metrics = {k: float(v) for k, v in result.items() if k.endswith(("_holdout", "_train"))}
        plots = result.get("plots") or {}
        metadata: dict = {
            "mlflow_run_id": result["mlflow_run_id"],
            "mlflow_experiment_id": experiment_id,
            "model_id": result["model_id"],
            "model_uri": result["model_uri"],
            "partition_range": manifest["partition_range"],
            "train_rows": int(result["train_rows"]),
            "holdout_rows": int(result["holdout_rows"]),
            "params": dg.MetadataValue.json(params),
            **metrics,
        }
        url = registry.run_url(experiment_id, result["mlflow_run_id"])
        if url:
            metadata["mlflow_run"] = dg.MetadataValue.url(url)
        for name, png in plots.items():
            metadata[name.removesuffix(".png")] = dg.MetadataValue.md(png_markdown(name, png))
        return dg.MaterializeResult(metadata=metadata)

    return candidate_model


def build_model_evaluation(spec: ScenarioSpec) -> dg.AssetsDefinition:
    candidate_key = naming.key(spec.name, "candidate_model")
    eval_key = naming.key(spec.name, "model_evaluation")
    metric = f"{spec.metric}_holdout"

    @dg.asset(
        key=eval_key,
        deps=[candidate_key],
        group_name=naming.MODEL_DEVELOPMENT,
        kinds={*spec.kinds, "mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
        check_specs=[
            dg.AssetCheckSpec(
                CHAMPION_CHECK,
                asset=eval_key,
                blocking=True,
                description=f"{spec.metric} not worse than the champion's beyond the tolerance",
            ),
            dg.AssetCheckSpec(
                SLICE_CHECK,
                asset=eval_key,
                blocking=True,
                description=f"{spec.metric} gap across {spec.slice_column} within the maximum",
            ),
        ],
    )
    def model_evaluation(
        context: dg.AssetExecutionContext,
        config: EvaluationConfig,
        lake: DataLake,
        registry: ModelRegistry,
    ) -> dg.MaterializeResult:
        """The candidate judged against the production champion and across segments."""
        tolerance = spec.tolerance if config.tolerance is None else config.tolerance
        max_gap = spec.max_slice_gap if config.max_slice_gap is None else config.max_slice_gap
        candidate = latest_metadata(context, candidate_key)
        holdout = lake.read_parquet(spec.holdout_path)
        model = spec.load_model(
            registry.download_artifacts(registry.logged_model_uri(candidate["model_id"]))
        )
        challenger_score = spec.score(model, holdout)[spec.metric]
        champion = registry.version_by_alias(spec.model_name, naming.CHAMPION_ALIAS, "prod")
        champion_score = None
        if champion is not None:
            champ_model = spec.load_model(
                registry.download_model(spec.model_name, champion.version, "prod")
            )
            champion_score = spec.score(champ_model, holdout)[spec.metric]
        beats = champion_score is None or spec.better_or_close(
            challenger_score, champion_score, tolerance
        )
        slices = spec.score_slices(model, holdout, spec.slice_column)
        gap = max(slices.values()) - min(slices.values()) if slices else 0.0
        fair = gap <= max_gap

        reasons = []
        if not beats:
            reasons.append(
                f"challenger {metric} {challenger_score:.4f} is worse than champion "
                f"v{champion.version} {champion_score:.4f} by more than {tolerance}"
            )
        if not fair:
            worst = min(slices, key=slices.get)
            reasons.append(
                f"{spec.metric} gap across {spec.slice_column} is {gap:.4f} > "
                f"{max_gap} (worst segment {worst}: {slices[worst]:.4f})"
            )
        verdict = "approved" if beats and fair else "rejected"
        comparison = (
            "first model: no champion to compare"
            if champion is None
            else f"{metric} {challenger_score:.4f} vs champion v{champion.version} "
            f"{champion_score:.4f} (tolerance {tolerance})"
        )
        reason = "; ".join(reasons) or comparison
        context.log.info(f"evaluation verdict: {verdict} ({reason})")

        client = registry.client("dev")
        run_id = candidate["mlflow_run_id"]
        client.log_metric(run_id, f"slice_gap_{spec.metric}", gap)
        if champion_score is not None:
            client.log_metric(run_id, f"champion_{metric}", champion_score)
        client.set_tag(run_id, "mlops.verdict", verdict)
        client.set_tag(run_id, "mlops.verdict_reason", reason[:5000])

        common = {
            f"challenger_{metric}": challenger_score,
            f"champion_{metric}": champion_score if champion_score is not None else float("nan"),
            "champion_version": champion.version if champion else "none",
            "tolerance": tolerance,
        }
        slice_meta = {
            "slice_gap": gap,
            "max_slice_gap": max_gap,
            "slices": dg.MetadataValue.md(slices_markdown(slices, spec.metric)),
        }
        return dg.MaterializeResult(
            metadata={
                "verdict": verdict,
                "reason": reason,
                "mlflow_run_id": run_id,
                "model_id": candidate["model_id"],
                "partition_range": candidate.get("partition_range", ""),
                **common,
                **slice_meta,
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=CHAMPION_CHECK,
                    passed=beats,
                    description=comparison,
                    metadata=common,
                ),
                dg.AssetCheckResult(
                    check_name=SLICE_CHECK,
                    passed=fair,
                    description=f"{spec.metric} gap across {spec.slice_column}: {gap:.4f} "
                    f"(max {max_gap})",
                    metadata=slice_meta,
                ),
            ],
        )

    return model_evaluation
