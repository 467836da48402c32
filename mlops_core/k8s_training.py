"""Where a training step runs on Kubernetes: one node pool per Dagster pool, as op tags.

Under `k8s_job_executor` every step is a pod of its own, and dagster-k8s reads the
`dagster-k8s/config` op tag to shape that pod (container resources, node selector,
tolerations). `training_op_tags(spec.model.pool)` is the one place that maps a
scenario's Dagster pool (`ModelSpec.pool`: None for CPU training, `gpu` for vision
and NLP) to the node pool and resources its training step needs, so the Dagster
pool (how many run at once: `dagster instance concurrency set gpu N`) and the
Kubernetes pool (where they run) are named alike.

The GPU pool follows AKS conventions: nodes labelled `mlops/pool=gpu` and tainted
`sku=gpu:NoSchedule` (`az aks nodepool add --labels mlops/pool=gpu
--node-taints sku=gpu:NoSchedule`, docs/kubernetes.md), so nothing but GPU steps
lands there. Tag values are plain JSON data: Dagster JSON-encodes non-string op tag
values and dagster-k8s decodes them (tests/deploy/test_k8s_manifests.py builds the
step Job from these tags with dagster-k8s's own constructors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

K8S_CONFIG_TAG = "dagster-k8s/config"
POOL_LABEL = "mlops/pool"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class NodePool:
    """The pod shape of a training step in one pool."""

    name: str
    cpu: str
    memory: str
    gpus: int = 0
    taint: tuple[str, str] | None = None  # (key, value) of the pool's NoSchedule taint

    def k8s_config(self) -> dict[str, Any]:
        """The `dagster-k8s/config` tag value (snake_case keys, as dagster-k8s expects)."""
        requests: dict[str, Any] = {"cpu": self.cpu, "memory": self.memory}
        # no CPU limit: throttling a training step only makes it slower; memory is capped
        limits: dict[str, Any] = {"memory": self.memory}
        if self.gpus:
            requests[GPU_RESOURCE] = str(self.gpus)
            limits[GPU_RESOURCE] = str(self.gpus)  # extended resources: request == limit
        pod_spec: dict[str, Any] = {"node_selector": {POOL_LABEL: self.name}}
        if self.taint:
            key, value = self.taint
            pod_spec["tolerations"] = [
                {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}
            ]
        return {
            "container_config": {"resources": {"requests": requests, "limits": limits}},
            "pod_spec_config": pod_spec,
            "pod_template_spec_metadata": {"labels": {POOL_LABEL: self.name}},
        }


# Dagster pool name (None: no pool) -> node pool. CPU training runs on the general pool.
TRAINING_POOLS: dict[str | None, NodePool] = {
    None: NodePool(name="cpu", cpu="2", memory="8Gi"),
    "gpu": NodePool(name="gpu", cpu="4", memory="24Gi", gpus=1, taint=("sku", "gpu")),
}


def training_op_tags(pool: str | None) -> dict[str, Any]:
    """Op tags for a training step in Dagster pool `pool`: `op_tags=training_op_tags(...)`."""
    if pool not in TRAINING_POOLS:
        known = sorted(str(name) for name in TRAINING_POOLS)
        raise ValueError(f"no Kubernetes node pool for Dagster pool {pool!r}; known: {known}")
    return {K8S_CONFIG_TAG: TRAINING_POOLS[pool].k8s_config()}
