"""Generic candidate model: the scenario's training entry point run on a training set version.

The training set version comes from this run's `training_set` materialization
(by run id), so two training runs at once each train on their own window. The
entry point runs on the training compute resource (a Pipes subprocess locally,
Azure ML in the cloud), in the scenario's compute pool (e.g. `gpu`). The asset
shows the MLflow run, metrics, plots and the dataset version it trained on.
"""

import json

import dagster as dg

from mlops_assets import naming
from mlops_assets.handoff import upstream_result
from mlops_assets.platform.notices import announce_loopback
from mlops_core.k8s_training import training_op_tags
from mlops_core.lineage import git_commit
from mlops_core.results import CandidateModel, DatasetVersion
from mlops_core.spec import ScenarioSpec
from mlops_core.training_io import STORAGE_OPTIONS_ENV
from resources.compute import TrainingCompute
from resources.identity import current_caller
from resources.lake import DataLake
from resources.notify import NotificationError, Notifier
from resources.registry import ModelRegistry


class TrainConfig(dg.Config):
    hyperparameters: dict[str, float] = {}
    family: str = ""
    """Model family for scenarios with several (NLP: `bert` or `tfidf`); empty: the first."""


def model_params(spec: ScenarioSpec, config: TrainConfig) -> dict:
    """The entry point's params: defaults, the run's hyperparameters, and the family."""
    families = spec.model.families
    if config.family and config.family not in families:
        raise dg.Failure(
            f"{spec.name} has no model family {config.family!r}; "
            f"choose one of {list(families) or 'none (leave family empty)'}"
        )
    family = {"family": config.family or families[0]} if families else {}
    return {**spec.model.default_params, **config.hyperparameters, **family}


def png_markdown(title: str, png_b64: str) -> str:
    return f"![{title}](data:image/png;base64,{png_b64})"


def lineage_tags(spec: ScenarioSpec, run_id: str, dataset: DatasetVersion) -> dict[str, str]:
    """MLflow run tags that the registered version inherits (prefix `mlops.`)."""
    return {
        "mlops.scenario": spec.name,
        "mlops.dagster_run_id": run_id,
        "mlops.partition_range": dataset.partition_range,
        "mlops.dataset_name": dataset.name,
        "mlops.dataset_version": dataset.version,
        "mlops.dataset_root": dataset.root,
        "mlops.code_version": spec.model.code_version,
        "mlops.git_commit": git_commit(),
        # who trained it: this run's identity (OS account / Entra ID), for separation of duties
        "mlops.trained_by": current_caller().principal,
    }


def build_candidate_model(spec: ScenarioSpec) -> dg.AssetsDefinition:
    training_key = naming.key(spec.name, spec.data.training_set_artifact)

    @dg.asset(
        key=naming.key(spec.name, "candidate_model"),
        deps=[training_key],
        group_name=naming.MODEL_DEVELOPMENT,
        kinds={*spec.model.kinds, "mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
        code_version=spec.model.code_version,
        pool=spec.model.pool,
        op_tags=training_op_tags(spec.model.pool),  # the node pool on Kubernetes
    )
    def candidate_model(
        context: dg.AssetExecutionContext,
        config: TrainConfig,
        lake: DataLake,
        registry: ModelRegistry,
        compute: TrainingCompute,
        notifier: Notifier,
    ) -> dg.MaterializeResult:
        """A freshly trained model in an MLflow run of the dev registry, not yet judged."""
        try:  # a drift-requested run says why it runs; a dead webhook must not stop training
            announce_loopback(context.run.tags, notifier, spec.model_name)
        except NotificationError as err:
            context.log.warning(f"loopback notice not delivered (kept in the outbox): {err}")
        params = model_params(spec, config)  # a wrong family fails before any work
        dataset = upstream_result(context, training_key, DatasetVersion)
        experiment_id = registry.ensure_experiment(spec.model_name, "dev")
        argv = [
            "--train-uri", lake.uri(dataset.path("train")),
            "--holdout-uri", lake.uri(dataset.path("holdout")),
            "--dataset-name", f"{dataset.name}@{dataset.version}",
            "--tracking-uri", registry.tracking_uri("dev"),
            "--experiment-id", experiment_id,
            "--run-name", f"{spec.name}-{context.run.run_id[:8]}",
            "--params", json.dumps(params),
            "--tags", json.dumps(lineage_tags(spec, context.run.run_id, dataset)),
        ]  # fmt: skip
        context.log.info(f"training {spec.model_name} on {dataset.version} ({dataset.root})")
        result = compute.run(
            context,
            spec.model.train_module,
            argv,
            env={STORAGE_OPTIONS_ENV: json.dumps(lake.storage_options())},
        )
        candidate = CandidateModel(
            mlflow_run_id=result["mlflow_run_id"],
            model_id=result["model_id"],
            model_uri=result["model_uri"],
            dataset_version=dataset.version,
            dataset_root=dataset.root,
            partition_range=dataset.partition_range,
        )
        # four decimals on the page; MLflow keeps the exact values
        metrics = {
            k: round(float(v), 4) for k, v in result.items() if k.endswith(("_holdout", "_train"))
        }
        metadata: dict = {
            **candidate.to_metadata(),
            "mlflow_experiment_id": experiment_id,
            "train_rows": int(result["train_rows"]),
            "holdout_rows": int(result["holdout_rows"]),
            "params": dg.MetadataValue.json(params),
            **metrics,
        }
        url = registry.run_url(experiment_id, result["mlflow_run_id"])
        if url:
            metadata["mlflow_run"] = dg.MetadataValue.url(url)
        for name, png in (result.get("plots") or {}).items():
            # the UI folds markdown away: a link opens the PNG itself from MLflow's UI
            link = registry.artifact_url(result["mlflow_run_id"], name)
            if link:
                metadata[f"{name.removesuffix('.png')}_png"] = dg.MetadataValue.url(link)
            metadata[name.removesuffix(".png")] = dg.MetadataValue.md(png_markdown(name, png))
        return dg.MaterializeResult(metadata=metadata)

    return candidate_model
