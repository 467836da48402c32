"""Generic staging stage: the registered challenger on a staging endpoint, tested.

`staging_deployment` deploys the dev registry's `challenger` to the scenario's
staging endpoint and runs four blocking checks against the live server:
smoke (same predictions as in-process), latency under a bounded concurrent
load (p99 below the SLO), the bad-input suite (4xx only, still serving) and
the package allowlist on the model's environment. Where the training set holds
human-labeled production items (vision, NLP), the candidate was retrained on them, and
staging also scores the endpoint's answers on their held-out share
(`mlops_core.production_check`); the result records both. It stages the version this
run registered (by run id), or the `challenger` when launched alone. Requests
come from the holdout of the version's own dataset, encoded by the scenario's
serving codec; bad inputs are the codec's. The outcome is a `StagingResult`
that records the thresholds it was judged by. It is written to the approvals
store for that exact version (what approval and promotion read) and tagged on
the registry version (`mlops.staging`, display only). Thresholds weaker than
the policy's `staging_minimums` fail the latency check (a huge SLO or a handful
of requests launders nothing), and a run that reconfigured resources at launch
is recorded as not counting. A refused environment is written to the audit trail.
"""

import dataclasses
from datetime import UTC, datetime

import dagster as dg

from mlops_assets import naming
from mlops_assets.deployment.launch_guard import reconfigured_resources
from mlops_assets.handoff import materialized_in_run
from mlops_core import probes as checks
from mlops_core.governance.policy import Policy, StagingMinimums
from mlops_core.governance.trust import AlreadyRecorded, PolicyOverrideRefused
from mlops_core.production_check import score_labeled_production
from mlops_core.results import RegisteredVersion, StagingResult
from mlops_core.spec import ScenarioSpec
from resources.approvals_store import ApprovalStore
from resources.endpoint import OnlineEndpoints
from resources.governance import Governance
from resources.lake import DataLake
from resources.registry import ModelRegistry

CHECKS = ("smoke", "latency_slo", "bad_input", "package_allowlist")
SAMPLE_ROWS = 64


def sample_requests(spec: ScenarioSpec, lake: DataLake, dataset_root: str):
    """A fixed sample of a dataset version's holdout items, as a client would send them."""
    if not dataset_root:
        raise dg.Failure("the model version names no dataset (mlops.dataset_root): retrain it")
    holdout = spec.data.read_split(lake, f"{dataset_root}/holdout.parquet")
    return spec.codec.request_batch(holdout[:SAMPLE_ROWS])


def probe_deployment(
    spec: ScenarioSpec,
    model_dir: str,
    frame,
    base_url: str,
    key: str,
    deployment: str,
    requests: int,
    concurrency: int,
) -> tuple[dict, dict]:
    """Smoke (same predictions as the model in-process) and a bounded load on one deployment."""
    expected = spec.model.predict(spec.model.load(model_dir), frame)
    smoke = checks.smoke(base_url, key, deployment, spec.codec.payload(frame), expected)
    load = checks.load_test(
        base_url, key, deployment, spec.codec.payload(frame[:1]),
        requests=requests, concurrency=concurrency,
    )  # fmt: skip
    return smoke, load


def production_note(production, trained_on: str) -> dict:
    """What staging measured on labeled production items, in one sentence for the UI."""
    if production is None:
        return {}
    failed = f"; {production.failed_requests} requests failed" if production.failed_requests else ""
    return {
        "production_check": dg.MetadataValue.md(
            f"{production.metric} {production.value:.3f} from the staging endpoint's answers on "
            f"{production.rows} held-out human-labeled production items (trained on "
            f"`{trained_on}`){failed}"
        )
    }


class StagingConfig(dg.Config):
    slo_p99_ms: float = 250.0
    load_requests: int = 300
    load_concurrency: int = 8


def build_staging_deployment(spec: ScenarioSpec) -> dg.AssetsDefinition:
    key = naming.key(spec.name, "staging_deployment")
    registered_key = naming.key(spec.name, "registered_model")

    @dg.asset(
        key=key,
        deps=[registered_key],
        group_name=naming.DEPLOYMENT,
        kinds={"starlette", "mlflow"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
        check_specs=[dg.AssetCheckSpec(c, asset=key, blocking=True) for c in CHECKS],
    )
    def staging_deployment(
        context: dg.AssetExecutionContext,
        config: StagingConfig,
        lake: DataLake,
        registry: ModelRegistry,
        endpoints: OnlineEndpoints,
        governance: Governance,
        approvals: ApprovalStore,
    ) -> dg.MaterializeResult:
        """The current challenger serving on the staging endpoint, with its test results."""
        registered = materialized_in_run(context.instance, context.run.run_id, registered_key)
        if registered is not None:
            version = RegisteredVersion.from_metadata(registered.metadata).version
        else:
            mv = registry.version_by_alias(spec.model_name, naming.CHALLENGER_ALIAS, "dev")
            if mv is None:
                raise dg.Failure(f"{spec.model_name} has no '{naming.CHALLENGER_ALIAS}' to stage")
            version = str(mv.version)
        tags = registry.client("dev").get_model_version(spec.model_name, version).tags or {}
        model_dir = registry.download_model(spec.model_name, version, "dev")
        info = endpoints.create_or_update_deployment(
            spec.staging_endpoint, "blue", model_dir, spec.model_name, version, registry="dev"
        )
        info = endpoints.set_traffic(spec.staging_endpoint, {"blue": 100})
        base = info.scoring_uri.rsplit("/", 1)[0]
        key_ = endpoints.get_keys(spec.staging_endpoint)["primary"]
        context.log.info(f"staged {spec.model_name} v{version} at {info.scoring_uri}")

        frame = sample_requests(spec, lake, tags.get("mlops.dataset_root", ""))
        smoke, load = probe_deployment(
            spec, model_dir, frame, base, key_, "blue",
            config.load_requests, config.load_concurrency,
        )  # fmt: skip
        bad = checks.bad_input_suite(base, key_, "blue", spec.codec.bad_inputs(frame))
        dataset_root = tags.get("mlops.dataset_root", "")
        holdout = spec.data.read_split(lake, f"{dataset_root}/holdout.parquet")
        production = score_labeled_production(spec, holdout, base, key_, "blue")
        violations = checks.package_violations(model_dir, checks.load_allowlist())

        target = f"{spec.model_name}:{version}"
        if violations:
            governance.audit().record(
                "stage", "staging_deployment", target, "preprod", "failed",
                reason="package allowlist: " + "; ".join(violations), **governance.signature(),
            )  # fmt: skip
        weak = staging_minimums(governance).weaker(config.slo_p99_ms, config.load_requests)
        passed = {
            "smoke": smoke["passed"],
            "latency_slo": not weak and load["errors"] == 0 and load["p99_ms"] <= config.slo_p99_ms,
            "bad_input": all(r["ok"] for r in bad),
            "package_allowlist": not violations,
        }
        outcome = "passed" if all(passed.values()) else "failed"
        client = registry.client("dev")
        client.set_model_version_tag(spec.model_name, version, "mlops.staging", outcome)
        client.set_model_version_tag(
            spec.model_name, version, "mlops.staging_run", context.run.run_id
        )
        import pandas as pd  # tables render through pandas; loaded only by this step

        bad_md = pd.DataFrame(
            [(r["case"], r["status"], "yes" if r["ok"] else "NO") for r in bad],
            columns=["case", "status", "ok"],
        ).to_markdown(index=False)
        result = StagingResult(
            model_name=spec.model_name,
            version=version,
            outcome=outcome,
            checks=passed,
            slo_p99_ms=config.slo_p99_ms,
            load_requests=config.load_requests,
            p50_ms=load["p50_ms"],
            p99_ms=load["p99_ms"],
            rps=load["rps"],
            trained_on=tags.get("mlops.partition_range", ""),
            production_rows=production.rows if production else 0,
            production_score=production.value if production else float("nan"),
        )
        record_staging(context, approvals, result)
        results = [
            dg.AssetCheckResult(
                check_name="smoke",
                passed=passed["smoke"],
                metadata={k: v for k, v in smoke.items() if k != "passed"},
            ),
            dg.AssetCheckResult(
                check_name="latency_slo",
                passed=passed["latency_slo"],
                description=f"p99 {load['p99_ms']:.1f} ms (SLO {config.slo_p99_ms} ms), "
                f"{load['errors']} errors in {load['requests']} requests"
                + "".join(f"; weaker than the policy minimum: {w}" for w in weak),
                metadata={**load, "slo_p99_ms": config.slo_p99_ms},
            ),
            dg.AssetCheckResult(
                check_name="bad_input",
                passed=passed["bad_input"],
                description=", ".join(r["case"] for r in bad if not r["ok"]) or None,
                metadata={"cases": dg.MetadataValue.md(bad_md)},
            ),
            dg.AssetCheckResult(
                check_name="package_allowlist",
                passed=passed["package_allowlist"],
                description="; ".join(violations) or None,
                metadata={"violations": len(violations)},
            ),
        ]
        return dg.MaterializeResult(
            metadata={
                **result.to_metadata(),
                **production_note(production, result.trained_on),
                "endpoint": spec.staging_endpoint,
                "scoring_uri": dg.MetadataValue.url(info.scoring_uri),
            },
            check_results=results,
        )

    return staging_deployment


def staging_minimums(governance: Governance) -> StagingMinimums:
    """The minimums the gates will judge by: the decision policy's (the packaged one's when a
    `$MLOPS_RBAC_POLICY` swap is refused), never a swapped file's."""
    try:
        return governance.decision_policy().staging_minimums
    except PolicyOverrideRefused:
        return Policy.packaged().staging_minimums


def record_staging(
    context: dg.AssetExecutionContext, approvals: ApprovalStore, result: StagingResult
) -> None:
    """The result for that exact version in the approvals store, which the gates read."""
    overrides = reconfigured_resources(context.run.run_config)
    record = {
        **dataclasses.asdict(result),
        "run_id": context.run.run_id,
        "recorded_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "launch_overrides": overrides,
    }
    if overrides:
        context.log.warning(f"resources {overrides} reconfigured at launch: this staging result "
                            "is recorded but does not count for approval")  # fmt: skip
    try:
        approvals.record_staging(record)
    except AlreadyRecorded:  # a retried step of the same run: the first result stands
        context.log.warning(f"run {context.run.run_id} already recorded a staging result")
