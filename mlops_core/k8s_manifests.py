"""The scoring server as a Kubernetes online deployment: manifests rendered from a few inputs.

`render_scoring_manifests(ScoringDeployment(...))` returns plain dicts (Deployment,
Service, HorizontalPodAutoscaler, PodDisruptionBudget, and a PersistentVolumeClaim
when the inference log goes to a shared volume); `python -m mlops_core.k8s_manifests`
prints them as YAML for `kubectl apply -f -`. Every manifest is checked against the
Kubernetes schemas in tests/deploy/test_k8s_manifests.py.

The pod is built in `mlops_core.k8s_pod`, the inputs are checked by
`mlops_core.k8s_scoring.ScoringDeployment`. Design constraints:
- One Deployment per endpoint deployment (`blue`, `green`); the endpoint's Service
  selects one of them, so a cut-over is applying the other colour's Service (render the
  new colour without it first, `--no-service`, so both run side by side).
- The pod's init container (`python -m mlops_core.scoring_pod`, same image) downloads
  the model and writes the serving config, with the keys read from a Secret that is
  created out of band (`<endpoint>-keys`, keys `primary` and `secondary`): no key is
  in a manifest. The config lives in a memory-backed volume.
- The server runs as a numeric non-root user (the images' `USER 10001`) on a
  read-only root filesystem; readiness, liveness and startup probes use `/health`,
  which answers once the models are loaded.
- The HPA scales on CPU and on the server's own p95 latency (`request_latency_seconds`
  histogram, serving/metrics.py), a Pods metric that a metrics adapter such as
  prometheus-adapter must serve (deploy/k8s/prometheus-adapter-values.yaml).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlops_core.k8s_pod import deployment_manifest
from mlops_core.k8s_scoring import LATENCY_METRIC, PORT, UID, ScoringDeployment

__all__ = ["LATENCY_METRIC", "PORT", "UID", "ScoringDeployment", "render_scoring_manifests"]


def service_manifest(d: ScoringDeployment) -> dict[str, Any]:
    port = {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": d.meta(d.endpoint),
        "spec": {"type": "ClusterIP", "selector": d.selector(), "ports": [port]},
    }


def autoscaler_manifest(d: ScoringDeployment) -> dict[str, Any]:
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": d.name}
    cpu = {"type": "Utilization", "averageUtilization": d.cpu_target_percent}
    latency = {"type": "AverageValue", "averageValue": f"{round(d.latency_target_s * 1000)}m"}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": d.meta(d.name),
        "spec": {
            "scaleTargetRef": target,
            "minReplicas": d.replicas,
            "maxReplicas": d.max_replicas,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": cpu}},
                {"type": "Pods", "pods": {"metric": {"name": LATENCY_METRIC}, "target": latency}},
            ],
            "behavior": {
                "scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]},
                "scaleDown": {"stabilizationWindowSeconds": 300},
            },
        },
    }


def disruption_budget_manifest(d: ScoringDeployment) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": d.meta(d.name),
        "spec": {
            "maxUnavailable": 1,  # drains go one pod at a time, whatever the HPA scaled to
            "selector": {"matchLabels": d.selector()},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def log_claim_manifest(d: ScoringDeployment) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": d.meta(d.log_claim),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": d.log_storage}},
        },
    }


def render_scoring_manifests(d: ScoringDeployment, service: bool = True) -> list[dict[str, Any]]:
    """Every object the deployment needs, in apply order (the keys Secret excepted).

    `service=False` leaves the endpoint's Service out: a new colour can then start and
    become ready while the Service still sends traffic to the old one."""
    claim = [log_claim_manifest(d)] if d.log_claim else []
    return [
        *claim,
        deployment_manifest(d),
        *([service_manifest(d)] if service else []),
        autoscaler_manifest(d),
        disruption_budget_manifest(d),
    ]


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_core.k8s_manifests", description=__doc__)
    parser.add_argument("--endpoint", required=True, help="e.g. classical-online")
    parser.add_argument("--image", required=True, help="scoring image with a fixed tag")
    parser.add_argument("--model-uri", required=True, help="models:/name/version, runs:/, ...")
    parser.add_argument("--deployment", default="blue")
    parser.add_argument("--namespace", default="mlops")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--max-replicas", type=int, default=10)
    parser.add_argument("--model-source-secret", default="")
    parser.add_argument("--model-claim", default="", help="claim holding MLOPS_HOME (read-only)")
    parser.add_argument("--log-claim", default="")
    parser.add_argument(
        "--no-service", action="store_true", help="leave the Service out (blue/green rollout)"
    )
    args = parser.parse_args(argv)
    options = vars(args)
    service = not options.pop("no_service")
    try:
        deployment = ScoringDeployment(**options)
    except ValueError as exc:
        print(f"k8s_manifests: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(to_yaml(render_scoring_manifests(deployment, service=service)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
