"""Benchmark: labels needed after a drift, uncertainty sampling vs random (vision scenario).

Run: `.venv/bin/python bench/labeling_bench.py [--quick]` (not part of the tests); prints a
markdown report, writes it as JSON to `bench/results/labeling_bench.json` (not with --quick).
Goal: the product's selection (`select_items` with the vision spec's least-confidence
uncertainty, random share 0.2, uncertain picks spread round-robin over the served label)
reaches a drifted accuracy X with <= 60% of the labels random sampling needs
(`select_items`, random share 1.0); X = random's mean accuracy at its largest budget, labels
interpolated linearly between budgets (0 = base model). Margin and entropy run alongside.
Per seed: `fit` on N_base clean images; the pool and the evaluation set are drifted test images
(`source.drift`). Each round labels up to the next budget (scored by the latest model), then
retrains from the base weights: one epoch of `fit` over base + labeled (oversampled) images.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_assets.scenarios.vision import source  # noqa: E402
from mlops_assets.scenarios.vision.model import uncertainty as least_confidence  # noqa: E402
from mlops_core import image_models  # noqa: E402
from mlops_core.labeling import select_items  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "labeling_bench.json"
GOAL = 0.6
RANDOM, PRODUCT = "random", "least-confidence spread by label (product)"


@dataclass(frozen=True)
class Config:
    n_base: int
    base_epochs: int
    pool: int
    evaluation: int
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    copies: int  # the labeled images are repeated to this many copies in each retraining


FULL = Config(5000, 2, 4000, 2000, (50, 100, 200, 400, 800), (0, 1, 2), 2500)
QUICK = Config(1000, 1, 600, 400, (20, 40, 80), (0,), 500)


# name -> (uncertainty score of class probabilities or None, random_share of select_items,
# spread the uncertain picks across predicted classes); the product's score is the vision
# spec's, from the served confidence (the top probability), spread by the served label
STRATEGIES: dict[str, tuple[Callable[[np.ndarray], np.ndarray] | None, float, bool]] = {
    RANDOM: (None, 1.0, False),
    PRODUCT: (lambda p: least_confidence(pd.DataFrame({"confidence": p.max(axis=1)})), 0.2, True),
    "least-confidence (plain)": (
        lambda p: least_confidence(pd.DataFrame({"confidence": p.max(axis=1)})),
        0.2,
        False,
    ),
    "margin": (lambda p: 1.0 - np.ptp(np.sort(p, axis=1)[:, -2:], axis=1), 0.2, False),
    "entropy": (lambda p: -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1), 0.2, False),
}
DATA: dict[str, source.ImageSet] = {}  # loaded before the workers fork
BUILD = image_models.build_network


def _px(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 255.0  # what the serving decode gives the model


def _split(cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """Base train images, the drifted pool and the evaluation set (drifted and clean)."""
    train, test = DATA["train"], DATA["test"]
    rng = np.random.default_rng(seed)
    base = rng.choice(len(train.labels), cfg.n_base, replace=False)
    order = rng.permutation(len(test.labels))
    pool, held = order[: cfg.pool], order[cfg.pool : cfg.pool + cfg.evaluation]
    return {
        "base_x": _px(train.images[base]), "base_y": train.labels[base],
        "pool_x": _px(source.drift(test.images[pool])), "pool_y": test.labels[pool],
        "eval_x": _px(source.drift(test.images[held])), "eval_clean": _px(test.images[held]),
        "eval_y": test.labels[held],
    }  # fmt: skip


def _accuracy(net: Any, d: dict[str, np.ndarray]) -> dict[str, float]:
    y = d["eval_y"]
    drifted = image_models.probabilities(net, d["eval_x"]).argmax(axis=1)
    clean = image_models.probabilities(net, d["eval_clean"]).argmax(axis=1)
    return {"drifted": float((drifted == y).mean()), "clean": float((clean == y).mean())}


def train_base(cfg: Config, seed: int) -> tuple[dict[str, Any], dict[str, float]]:
    d = _split(cfg, seed)
    net = image_models.fit(d["base_x"], d["base_y"], 10, epochs=cfg.base_epochs, seed=seed)
    return net.state_dict(), _accuracy(net, d)


def _base(state: dict[str, Any], classes: int = 10) -> Any:
    net = BUILD(classes)
    net.load_state_dict(state)
    return net.eval()


def retrain(state: dict[str, Any], x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """One epoch of the product's `fit`, started from the base weights instead of fresh ones."""
    image_models.build_network = lambda classes: _base(state, classes)  # what fit calls
    try:
        return image_models.fit(x, y, 10, epochs=1, seed=seed)
    finally:
        image_models.build_network = BUILD


def run_strategy(cfg: Config, seed: int, name: str, state: dict[str, Any]) -> list[dict]:
    """Accuracy after each labeling round of one strategy on one seed."""
    score, share, by_label = STRATEGIES[name]
    d = _split(cfg, seed)
    labeled, rows, net = np.zeros(0, dtype=np.int64), [], _base(state)  # base scores round 1
    for r, budget in enumerate(cfg.budgets):
        rest = np.setdiff1d(np.arange(cfg.pool), labeled)
        proba = image_models.probabilities(net, d["pool_x"][rest])
        u = score(proba) if score else rest * 0.0
        picked = select_items(
            pd.DataFrame({"item_id": rest}), u, budget - len(labeled), share, seed * 1000 + r,
            spread_by=proba.argmax(axis=1).tolist() if by_label else None,
        )  # fmt: skip
        labeled = np.concatenate([labeled, picked["item_id"].to_numpy()])
        copies = np.resize(labeled, max(cfg.copies, len(labeled)))  # oversampled, cyclically
        x = np.concatenate([d["base_x"], d["pool_x"][copies]])
        y = np.concatenate([d["base_y"], d["pool_y"][copies]])
        net = retrain(state, x, y, seed * 1000 + r)
        top = np.bincount(d["pool_y"][labeled]).max() / len(labeled)  # largest class's share
        rows.append({"labels": budget, **_accuracy(net, d), "top_class_share": float(top)})
    return rows


def needed(labels: list[int], acc: list[float], target: float) -> float | None:
    """Labels at which the curve first reaches `target` (linear between budgets), None if never."""
    for i, a in enumerate(acc):
        if a >= target:
            if i == 0:
                return float(labels[0])
            a0, l0 = acc[i - 1], labels[i - 1]
            return l0 + (target - a0) / (a - a0) * (labels[i] - l0)
    return None


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    return mine / theirs if mine is not None and theirs else None


def summarise(cfg: Config, base: list[dict], runs: dict[str, list[list[dict]]]) -> dict:
    labels, curves, drifted = [0, *cfg.budgets], {}, {}
    for name, ss in runs.items():
        share = np.mean([[r["top_class_share"] for r in rs] for rs in ss], axis=0)
        c = curves[name] = {"top_class_share": [None, *share]}
        for k in ("clean", "drifted"):
            seeds = np.array([[b[k], *[r[k] for r in rs]] for b, rs in zip(base, ss, strict=True)])
            c[k], c[f"{k}_sd"] = seeds.mean(axis=0).tolist(), seeds.std(axis=0).tolist()
        drifted[name] = seeds  # drifted accuracy per seed
    target = curves[RANDOM]["drifted"][-1]
    need = {n: needed(labels, c["drifted"], target) for n, c in curves.items()}
    ratio = {n: _ratio(v, need[RANDOM]) for n, v in need.items()}
    per_seed: dict[str, list[float | None]] = {n: [] for n in runs}
    for i in range(len(base)):  # the same measure on each seed alone, to show the spread
        x = drifted[RANDOM][i, -1]
        for name in runs:
            per_seed[name].append(
                _ratio(needed(labels, drifted[name][i], x), needed(labels, drifted[RANDOM][i], x))
            )
    return {"labels": labels, "curves": curves, "target": target, "needed": need,
            "ratio": ratio, "per_seed_ratio": per_seed}  # fmt: skip


def _fmt(v: float | None, spec: str) -> str:
    return "not reached" if v is None else format(v, spec)


def _table(s: dict, first: int, cell: Callable[[dict[str, list[float]], int], str]) -> list[str]:
    """A markdown table: a row per budget from `labels[first]`, a column per strategy."""
    names = list(s["curves"])
    out = ["", "| labels | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for i in range(first, len(s["labels"])):
        cells = " | ".join(cell(s["curves"][k], i) for k in names)
        out.append(f"| {s['labels'][i] or '0 (base)'} | {cells} |")
    return [*out, ""]


def render(cfg: Config, s: dict, seconds: float) -> str:
    names = list(s["curves"])
    lines = [
        f"labeling bench (vision): base CNN on {cfg.n_base:,} clean images x {cfg.base_epochs} "
        f"epochs; pool {cfg.pool:,} drifted, eval {cfg.evaluation:,} drifted; seeds "
        f"{list(cfg.seeds)}; retrain = base weights + 1 epoch, labeled x {cfg.copies:,} copies",
        "",
        "drifted accuracy, mean ±sd over seeds (clean accuracy)",
        *_table(
            s,
            0,
            lambda c, i: f"{c['drifted'][i]:.1%} ±{c['drifted_sd'][i]:.1%} ({c['clean'][i]:.1%})",
        ),
        "share of the labeled images in their most frequent class (of 10), mean over seeds",
        *_table(s, 1, lambda c, i: f"{c['top_class_share'][i]:.0%}"),
        f"target X = random's drifted accuracy at {s['labels'][-1]} labels = {s['target']:.1%}",
        "",
        "| strategy | labels to reach X | ratio vs random | per-seed ratios | goal <= 60% |",
        "|---|---:|---:|---|---|",
    ]
    for k in names:
        r = s["ratio"][k]
        per = ", ".join(_fmt(v, ".2f") for v in s["per_seed_ratio"][k])
        met = "-" if k == RANDOM else ("met" if r is not None and r <= GOAL else "NOT met")
        lines.append(f"| {k} | {_fmt(s['needed'][k], '.0f')} | {_fmt(r, '.2f')} | {per} | {met} |")
    lines += ["", f"runtime: {seconds:.0f} s on {os.cpu_count()} CPUs (2 workers x 1 thread)"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a small run, written nowhere")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    started = time.perf_counter()
    DATA.update(train=source.load("train"), test=source.load("test"))
    with multiprocessing.get_context("fork").Pool(2, torch.set_num_threads, (1,)) as workers:
        bases = workers.starmap(train_base, [(cfg, s) for s in cfg.seeds])
        jobs = [(cfg, s, n, bases[i][0]) for n in STRATEGIES for i, s in enumerate(cfg.seeds)]
        done = workers.starmap(run_strategy, jobs, chunksize=1)
    runs: dict[str, list[list[dict]]] = {n: [] for n in STRATEGIES}
    for (_, _, name, _), rows in zip(jobs, done, strict=True):
        runs[name].append(rows)
    seconds = time.perf_counter() - started
    summary = summarise(cfg, [b[1] for b in bases], runs)
    print(render(cfg, summary, seconds))
    if not args.quick:
        raw = {"config": asdict(cfg), "source": DATA["test"].source, "seconds": seconds,
               "base": [b[1] for b in bases], "runs": runs, **summary}  # fmt: skip
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(raw, indent=2) + "\n")


if __name__ == "__main__":
    main()
