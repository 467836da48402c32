"""Batch scoring: a partition range as mini-batches, each scored and written by a worker.

The shape follows Azure ML batch endpoints, so the same settings drive the local
process pool (`mlops_core/batch_pool.py`) and the Azure batch deployment
(`mlops_core/batch_azure.py`): `mini_batch_size` partitions (one input file
each) per mini-batch, `max_concurrency_per_instance` worker processes, and
`max_retries` / `retry_timeout` per mini-batch.

Constraints:
- A scenario plugs in through its spec: `batch_items(lake, partition)`,
  `batch_predict(model, items)` and `load(model_dir)` travel to workers as
  module-level callables (pickled by reference), with the lake as an `FsLake`.
- `batch_predict` is row-wise (an item's output depends on that item only), as
  Azure's mini-batching also assumes. A mini-batch of DataFrames is therefore
  scored in one call on the concatenated rows and split back per partition:
  the model's fixed cost per call is paid once per mini-batch, not per day.
- Every partition's output is written atomically (temp name + rename, or one
  blob commit), so a killed worker leaves no half-written output.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_core.lake_fs import FsLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pyarrow as pa


@dataclass(frozen=True)
class BatchSettings:
    """Batch deployment settings, named as in azure-ai-ml's `ModelBatchDeploymentSettings`."""

    mini_batch_size: int = 10
    """Most partitions (input files) per mini-batch; smaller when the range is short."""
    max_concurrency_per_instance: int = 0
    """Worker processes per instance; 0 means one per core."""
    instance_count: int = 1
    """Machines; the local pool is one instance."""
    max_retries: int = 3
    """Attempts after the first for a failed or timed-out mini-batch."""
    retry_timeout: int = 300
    """Seconds a mini-batch may run before its worker is stopped and it is retried."""
    output_file_name: str = "predictions.parquet"
    """Name of the output file in each partition's folder."""

    def __post_init__(self) -> None:
        if self.mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {self.mini_batch_size}")
        if self.max_concurrency_per_instance < 0 or self.instance_count < 1:
            raise ValueError("max_concurrency_per_instance must be >= 0, instance_count >= 1")
        if self.max_retries < 0 or self.retry_timeout < 1:
            raise ValueError("max_retries must be >= 0 and retry_timeout >= 1")
        if "/" in self.output_file_name or not self.output_file_name:
            raise ValueError(f"output_file_name must be a file name: {self.output_file_name!r}")

    def workers(self) -> int:
        return self.max_concurrency_per_instance or os.cpu_count() or 1


@dataclass(frozen=True)
class MiniBatch:
    index: int
    partitions: tuple[str, ...]
    failures: int = 0


def plan_mini_batches(
    partitions: Sequence[str], mini_batch_size: int, workers: int
) -> list[MiniBatch]:
    """Consecutive partitions, at most `mini_batch_size` each, and at least four
    mini-batches per worker when the range allows it, so no worker idles at the end."""
    size = max(1, min(mini_batch_size, len(partitions) // (4 * max(workers, 1))))
    return [
        MiniBatch(i, tuple(partitions[start : start + size]))
        for i, start in enumerate(range(0, len(partitions), size))
    ]


@dataclass(frozen=True)
class BatchJob:
    """Everything a worker needs; picklable (callables travel by reference)."""

    load: Callable[[str], Any]
    batch_items: Callable[[Any, str], Any]
    batch_predict: Callable[[Any, Any], Any]
    model_dir: str
    lake: FsLake
    output: str
    """Lake path of a partition's output, with `{partition}` in it."""
    constants: Mapping[str, str] = field(default_factory=dict)
    """Columns with one value for every output row (e.g. model_version)."""
    run_token: str = "tmp"
    """Names this run's temporary files, so concurrent runs never share one."""
    preload: tuple[str, ...] = ()
    """More modules workers need, imported once by the forkserver (see `model_modules`)."""

    def output_path(self, partition: str) -> str:
        return self.output.format(partition=partition)

    def temp_path(self, partition: str) -> str:
        return self.lake.temp_path(self.output_path(partition), self.run_token)

    def modules(self) -> list[str]:
        """Modules a worker imports to run this job (preloaded by the forkserver)."""
        fns = (self.load, self.batch_items, self.batch_predict)
        return sorted({"mlops_core.batch_pool", *(fn.__module__ for fn in fns), *self.preload})


_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def model_modules(model_dir: str) -> tuple[str, ...]:
    """What loading an MLflow model folder imports lazily: the flavor's loader module
    (`python_function.loader_module`), skops for skops-serialized models, and the modules
    a pickled python model's class needs (MLmodel metadata `mlops_preload`: torch and
    transformers for a text model, seconds of imports). Preloaded once, they spare every
    worker those imports before its first mini-batch."""
    import yaml

    path = Path(model_dir) / "MLmodel"
    if not path.is_file():
        return ()
    meta = yaml.safe_load(path.read_text()) or {}
    flavors = meta.get("flavors", {})
    loader = flavors.get("python_function", {}).get("loader_module")
    skops = any(f.get("serialization_format") == "skops" for f in flavors.values())
    declared = (meta.get("metadata") or {}).get("mlops_preload") or []
    # module names only: a malformed entry is skipped, never imported as something else
    preload = [m for m in declared if isinstance(m, str) and _MODULE.fullmatch(m)]
    return tuple(m for m in (loader, "skops.io" if skops else None, *preload) if m)


class PartitionError(Exception):
    """Scoring failed inside one known partition."""

    def __init__(self, partition: str, message: str) -> None:
        super().__init__(f"partition {partition}: {message}")
        self.partition = partition


class MiniBatchFailed(RuntimeError):
    """A mini-batch failed on every attempt; names the partition when it is known."""

    def __init__(self, batch: MiniBatch, attempts: int, reason: str, partition: str | None):
        self.partitions = batch.partitions
        self.partition = partition or (batch.partitions[0] if len(batch.partitions) == 1 else None)
        where = (
            f"partition {self.partition}"
            if self.partition
            else f"mini-batch of partitions {', '.join(batch.partitions)}"
        )
        super().__init__(f"{where} failed after {attempts} attempt(s): {reason}")
        self.attempts = attempts
        self.reason = reason


@dataclass(frozen=True)
class BatchReport:
    rows: dict[str, int]
    """Rows written per partition, in partition order."""
    workers: int
    mini_batches: int
    retries: int
    seconds: float


def to_table(output: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(output, pa.Table):
        return output
    return pa.Table.from_pandas(output, preserve_index=False)


def with_constants(table: pa.Table, constants: Mapping[str, str]) -> pa.Table:
    import pyarrow as pa

    for name, value in constants.items():
        if name in table.column_names:
            table = table.drop_columns([name])
        table = table.append_column(name, pa.repeat(pa.scalar(value), table.num_rows))
    return table


def predict_tables(job: BatchJob, model: Any, items: Sequence[Any]) -> list[pa.Table]:
    """One output table per partition's items; DataFrames are scored in one call."""
    import pandas as pd

    if len(items) > 1 and all(isinstance(i, pd.DataFrame) for i in items):
        lengths = [len(i) for i in items]
        table = to_table(job.batch_predict(model, pd.concat(items, ignore_index=True)))
        if table.num_rows == sum(lengths):
            starts = itertools.accumulate(lengths[:-1], initial=0)
            return [table.slice(s, n) for s, n in zip(starts, lengths, strict=True)]
    return [to_table(job.batch_predict(model, i)) for i in items]


def score_mini_batch(job: BatchJob, model: Any, partitions: Sequence[str]) -> dict[str, int]:
    """Read, score and write each partition of a mini-batch; rows written per partition."""
    items = []
    for partition in partitions:
        try:
            items.append(job.batch_items(job.lake, partition))
        except Exception as err:
            raise PartitionError(partition, f"reading items: {err!r}") from err
    if len(partitions) == 1:
        try:
            tables = predict_tables(job, model, items)
        except Exception as err:
            raise PartitionError(partitions[0], f"scoring: {err!r}") from err
    else:
        tables = predict_tables(job, model, items)
    rows = {}
    for partition, table in zip(partitions, tables, strict=True):
        table = with_constants(table, job.constants)
        job.lake.write_table(job.output_path(partition), table, job.run_token)
        rows[partition] = table.num_rows
    return rows
