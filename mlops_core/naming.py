"""Names shared by assets, sensors, the CLI and the demo, without Dagster.

Asset keys are `[scenario, artifact]`; jobs and sensors are named after the
scenario so three scenarios never collide. `mlops_assets.naming` adds the
Dagster-typed helpers (AssetKey, tags) on top of these.
"""

from __future__ import annotations

CHALLENGER_ALIAS = "challenger"
CHAMPION_ALIAS = "champion"


def version_label(
    version: str,
    registry: str | None = None,
    source: str | None = None,
    source_registry: str = "dev",
) -> str:
    """`prod v2 (from dev v3)`, `prod v2` or `v2`: versions are numbered per registry, so a
    number is never shown without its registry where it is known. (`serving.labels` writes
    the same words: the data plane imports nothing of ours.)"""
    if not version:
        return ""
    label = f"{registry} v{version}" if registry else f"v{version}"
    return f"{label} (from {source_registry} v{source})" if source else label


def key_path(scenario: str, artifact: str) -> list[str]:
    return [scenario, artifact]


def drift_sensor_name(scenario: str, loopback: str) -> str:
    return f"{scenario}_drift_{loopback}_sensor"


def training_job_name(scenario: str) -> str:
    return f"{scenario}_training_job"


def promotion_job_name(scenario: str) -> str:
    return f"{scenario}_promotion_job"


def monitoring_job_name(scenario: str) -> str:
    return f"{scenario}_monitoring_job"


def labeling_job_name(scenario: str) -> str:
    """Sends uncertain production items to labelers (the relabel loopback's first run)."""
    return f"{scenario}_labeling_job"


def labeled_training_job_name(scenario: str) -> str:
    """New labeled set version, then training (the relabel loopback's second run)."""
    return f"{scenario}_labeled_training_job"


def endpoint_health_job_name(scenario: str) -> str:
    return f"{scenario}_endpoint_health_job"


def endpoint_scaling_job_name(scenario: str) -> str:
    return f"{scenario}_endpoint_scaling_job"


BUDGET_ALERT_JOB = "platform_budget_alert_job"
WORKSPACE_DECAY_JOB = "platform_workspace_decay_job"
