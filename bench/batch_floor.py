"""The floor `bench/batch_bench.py` compares the batch endpoint with: the least code that
reads a day, predicts and writes the same output, with nothing of the platform.

Its own module, importing only the scenario's feature and model code, so the
per-core floor's spawned processes import no more than that (not the bench's
Dagster definitions). Each process loads the model once and loops over a
contiguous share of the days.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any

import pandas as pd

from mlops_assets.scenarios.classical.features import build_inference_features
from mlops_assets.scenarios.classical.model import batch_predict, load_model

_MODEL: Any = None


def score_day(model: Any, source: str, target: str, version: str) -> int:
    out = batch_predict(model, build_inference_features(pd.read_parquet(source)))
    out["model_version"] = version
    out.to_parquet(target, index=False)
    return len(out)


def single_process(model_dir: str, jobs: list[tuple[str, str]], version: str) -> tuple[int, float]:
    """One loop in this process; the model is loaded before the clock starts."""
    model = load_model(model_dir)
    started = time.perf_counter()
    rows = sum(score_day(model, source, target, version) for source, target in jobs)
    return rows, time.perf_counter() - started


def _init(model_dir: str) -> None:
    global _MODEL
    _MODEL = load_model(model_dir)


def _shard(args: tuple[list[tuple[str, str]], str]) -> int:
    jobs, version = args
    return sum(score_day(_MODEL, source, target, version) for source, target in jobs)


def per_core(model_dir: str, jobs: list[tuple[str, str]], version: str) -> tuple[int, float]:
    """One spawned process per core, each loading the model and scoring a contiguous
    share of the days; the clock includes starting the processes."""
    n = os.cpu_count() or 1
    size = -(-len(jobs) // n)
    shards = [(jobs[i : i + size], version) for i in range(0, len(jobs), size)]
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(len(shards), _init, (model_dir,)) as pool:
        rows = sum(pool.map(_shard, shards, chunksize=1))
    return rows, time.perf_counter() - started
