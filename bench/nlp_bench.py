"""Benchmark: the NLP model's training time, online serving (ours vs `mlflow models serve`), batch.

`.venv/bin/python bench/nlp_bench.py [--seconds 20] [--quick]`, not a test. First, on one core:
`fit('bert')` on 5,000 Rotten Tomatoes snippets (2 epochs) and `fit('tfidf')`, timed, with
holdout accuracy on 1,500; that BERT is logged with nlp/train.py's `log_model` arguments to a
temporary MLflow store (untimed) and all contenders load it, all with OMP_NUM_THREADS=1.
Online: 16 keep-alive connections, one new snippet (production pool) per request, warm-up,
--seconds per server; ours as serving_bench starts it (key, fsynced inference log) on /score,
`mlflow models serve --env-manager local` on /invocations. Batch, per layout in a fresh
interpreter: floor (bench/nlp_floor.py) = read parquet, tokenize, batched forward, write, in 1
process (model loaded first) and 1 spawned process per core (start included); ours = the
`batch_predictions` asset's `run_batch(batch_job(SPEC, ...))`, default settings, cold, warm.
--quick: small sizes and 3 s per server, a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # before torch loads: one thread in every process here
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Heavy imports live in functions: spawned floor processes and the forkserver import this module.
KEY, WARMUP = "bench-key-0123456789", 3.0
LOADAVG = Path("/proc/loadavg")
SIZES = {  # (training texts, BERT epochs, holdout texts, batch layouts {label: (days, per day)})
    False: (5000, 2, 1500, {"1 day x 2,500": (1, 2500), "10 days x 250": (10, 250)}),
    True: (1000, 1, 500, {"1 day x 500": (1, 500), "2 days x 250": (2, 250)}),
}


def train_and_log(home: Path, n: int, epochs: int, n_holdout: int) -> tuple[str, dict]:
    """Timed fits of both families on one core, holdout accuracy; the BERT logged (untimed)."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from mlops_assets.scenarios.nlp import model as nlp
    from mlops_assets.scenarios.nlp.source import CLASSES, splits
    from mlops_core import text_models
    from mlops_core.image_models import quiet_pyfunc_notices

    text_models.set_threads()
    quiet_pyfunc_notices()
    base, holdout, _ = splits()
    train, holdout, stats, fitted = base.head(n), holdout.head(n_holdout), {}, {}
    for family, extra in (("bert", {"epochs": epochs}), ("tfidf", {})):
        params = nlp.family_params({"family": family, **extra})
        started = time.perf_counter()
        clf = fitted[family] = text_models.fit(
            family, nlp.texts(train), train.label.tolist(), list(CLASSES), params
        )
        stats[family] = {"seconds": time.perf_counter() - started,
                         "accuracy": nlp.score(clf, holdout)["accuracy"]}  # fmt: skip
    classifier = fitted["bert"]
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    exp = mlflow.create_experiment("nlp-bench", (home / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.pyfunc.log_model(  # the arguments of nlp/train.py
            name="model", python_model=classifier,
            artifacts=classifier.save_artifacts(home / "files"),
            signature=ModelSignature(inputs=Schema([ColSpec("string", "text")]), outputs=Schema(
                [ColSpec("string", "label"), ColSpec("double", "probability")])),
            metadata=text_models.metadata(max_length=classifier.max_length,
                                          embedding_dims=classifier.embedding_dims),
            pip_requirements=text_models.pip_requirements("bert"),
        )  # fmt: skip
    return mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(home / "model")), stats


def batch_case(home: Path, model: str, n_days: int, per_day: int) -> dict:
    import multiprocessing as mp

    import pandas as pd

    from bench import nlp_floor
    from mlops_assets.deployment.batch_predictions import batch_job, predictions_path
    from mlops_assets.scenarios.nlp import SPEC, data_assets
    from mlops_core.batch import BatchSettings
    from mlops_core.batch_pool import run_batch
    from resources.lake import LocalLake

    lake, n, files = home / "lake", os.cpu_count() or 1, []
    # raw_texts' own days (250 snippets each, before the drift), cut into the layout's days
    per = data_assets.TEXTS_PER_DAY
    raw = pd.concat([data_assets.day_texts(f"2024-06-{d + 1:02d}")[0]
                     for d in range(-(-n_days * per_day // per))], ignore_index=True)  # fmt: skip
    days = [f"2024-06-{d + 1:02d}" for d in range(n_days)]
    for i, day in enumerate(days):
        (path := lake / data_assets.raw_path(day)).parent.mkdir(parents=True, exist_ok=True)
        raw.iloc[i * per_day : (i + 1) * per_day].to_parquet(path, index=False)
        files.append((str(path), str(home / day)))
    nlp_floor.load(model)
    started = time.perf_counter()
    rows1 = nlp_floor.score(model, [(s, f"{t}.parquet", 0, per_day) for s, t in files])
    times = {"floor1": time.perf_counter() - started}
    size = -(-len(files) // n) if len(files) >= n else -(-per_day // n)
    parts = (  # contiguous days per process, or contiguous rows of the one day
        [[(s, f"{t}-n.parquet", 0, per_day) for s, t in files[i : i + size]]
         for i in range(0, len(files), size)] if len(files) >= n else
        [[(s, f"{t}-{k}.parquet", k * size, (k + 1) * size) for s, t in files] for k in range(n)]
    )  # fmt: skip
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(len(parts)) as pool:
        rows_n = sum(pool.starmap(nlp_floor.score, [(model, p) for p in parts], chunksize=1))
    times["floor_n"] = time.perf_counter() - started
    job = batch_job(SPEC, LocalLake(root=str(lake)), model, "1", "bench", "predictions.parquet")
    for name in ("ours_cold", "ours_warm"):
        started = time.perf_counter()
        report = run_batch(job, days, BatchSettings())
        times[name] = time.perf_counter() - started
    for day in days:  # the floor answers what the product answers
        a = pd.read_parquet(lake / predictions_path("nlp", day))
        b = pd.read_parquet(home / f"{day}.parquet")
        assert (a.text_id == b.text_id).all() and (a.label == b.label).all()
        assert (a.probability - b.probability).abs().max() < 2e-6
    assert sum(report.rows.values()) == rows1 == rows_n == n_days * per_day
    return {"rows": rows1, **times, "procs": len(parts), "workers": report.workers,
            "mini_batches": report.mini_batches}  # fmt: skip


def online(work: Path, model: str, warmup: float, seconds: float) -> dict:
    import httpx
    import uvloop

    from bench.serving_bench import free_port, request_bytes, start, stop
    from bench.vision_bench import _load  # 16 connections cycling over their payloads
    from mlops_assets.scenarios.nlp.source import splits

    texts = splits()[2]["text"].tolist()  # the production pool, about 5,300 snippets
    (config := work / "serving.json").write_text(json.dumps({
        "endpoint": "nlp-bench", "deployments": {"blue": {"model_path": model}},
        "traffic": {"blue": 100}, "keys": {"primary": KEY},
        "inference_log_dir": str(work / "inference_log"), "max_body_bytes": 1 << 20,
    }))  # fmt: skip
    po, pm = free_port(), free_port()
    sides = {  # name: (command, port, probe, route, key, body of one text, its answer)
        "ours": ([sys.executable, "-m", "serving", "--config", str(config), "--port", str(po),
                  "--log-level", "warning"], po, "/health", "/score", KEY,
                 lambda s: {"input_data": {"columns": ["text"], "index": [0], "data": [[s]]}},
                 lambda a: a[0]),
        "mlflow": ([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
                    model, "-p", str(pm), "-h", "127.0.0.1", "--workers", "1",
                    "--env-manager", "local"], pm, "/ping", "/invocations", None,
                   lambda s: {"dataframe_split": {"columns": ["text"], "data": [[s]]}},
                   lambda a: a["predictions"][0]),
    }  # fmt: skip
    procs, out, answers = [], {}, {}
    try:
        for name, (cmd, port, probe, route, key, body, answer) in sides.items():
            procs.append(start(cmd, port, probe, work / f"{name}.log"))
            auth = {"Authorization": f"Bearer {key}"} if key else {}
            url = f"http://127.0.0.1:{port}{route}"
            answers[name] = [
                answer(httpx.post(url, json=body(s), headers=auth).json()) for s in texts[:32]
            ]
        assert answers["ours"] == answers["mlflow"], answers
        for name, (_, port, _, route, key, body, _) in sides.items():
            payloads = [request_bytes(port, json.dumps(body(s)).encode(), key)
                        .replace(b"/invocations", route.encode(), 1) for s in texts]  # fmt: skip
            out[name] = uvloop.run(_load(port, payloads, warmup, seconds))
    finally:
        for proc in procs:
            stop(proc)
    return out


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--case":
        print(json.dumps(batch_case(Path(sys.argv[2]), sys.argv[3], *map(int, sys.argv[4:]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="measured, per server (20; --quick 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    n_train, epochs, n_holdout, layouts = SIZES[args.quick]
    seconds, warmup = args.seconds or (3.0 if args.quick else 20.0), 1.0 if args.quick else WARMUP
    began, load_start, batch = time.perf_counter(), LOADAVG.read_text().rsplit(" ", 2)[0], {}
    with tempfile.TemporaryDirectory() as tmp:
        model, fits = train_and_log(Path(tmp), n_train, epochs, n_holdout)
        for i, (label, layout) in enumerate(layouts.items()):
            case = [sys.executable, __file__, "--case", f"{tmp}/b{i}", model, *map(str, layout)]
            run = subprocess.run(case, check=True, capture_output=True, text=True).stdout
            batch[label] = json.loads(run.strip().splitlines()[-1])
        on = online(Path(tmp), model, warmup, seconds)
    o, m, ok = on["ours"], on["mlflow"], lambda met: "met" if met else "MISSED"
    b, t = fits["bert"], fits["tfidf"]
    lines = [
        f"nlp bench{' (--quick)' if args.quick else ''}: {os.cpu_count()} CPUs, load average at "
        f"start {load_start}, OMP_NUM_THREADS=1 for training, both servers and every batch "
        "process", "",
        f"| training on 1 core: {n_train:,} texts | fit s | holdout accuracy ({n_holdout:,}) | "
        "goal |", "|---|---:|---:|---|",
        f"| bert, {epochs} epochs | {b['seconds']:.1f} | {b['accuracy']:.3f} | < 120 s "
        f"{ok(b['seconds'] < 120)} |",
        f"| tfidf | {t['seconds']:.1f} | {t['accuracy']:.3f} | |", "",
        "| online: 1 snippet/request, 16 connections | req/s | p50 ms | p99 ms | requests | "
        "non-200 |", "|---|---:|---:|---:|---:|---:|",
        *(f"| {n} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['requests']} | "
          f"{r['errors']} |" for n, r in (("ours, /score", o), ("mlflow models serve", m))),
        f"| ours / mlflow (goals: >= 5x req/s, lower p99) | {o['rps'] / m['rps']:.2f}x "
        f"{ok(o['rps'] >= 5 * m['rps'])} | {o['p50_ms'] / m['p50_ms']:.2f}x | "
        f"{o['p99_ms'] / m['p99_ms']:.2f}x {ok(o['p99_ms'] < m['p99_ms'])} | {seconds:g} s "
        "each | |", "",
        "| batch (rows/s) | floor, 1 proc | floor, 1 proc/core | ours (cold) | ours/floor 1 | ours/"
        "floor per core | ours (warm) | goal: ours >= 0.8 x faster floor |", "|---|" + "---:|" * 6
        + "---|",
    ]  # fmt: skip
    for label, r in batch.items():
        f1, fn, oc, ow = (r["rows"] / r[k] for k in ("floor1", "floor_n", "ours_cold", "ours_warm"))
        lines.append(f"| {label} ({r['workers']} workers, {r['mini_batches']} mini-batches) | "
                     f"{f1:,.0f} | {fn:,.0f} ({r['procs']} procs) | {oc:,.0f} | {oc / f1:.2f} | "
                     f"{oc / fn:.2f} | {ow:,.0f} | {ok(oc >= 0.8 * max(f1, fn))} |")  # fmt: skip
    end = LOADAVG.read_text().rsplit(" ", 2)[0]
    lines.append(f"\nload average at end {end}; ran {time.perf_counter() - began:.0f} s")
    print(report := "\n".join(lines) + "\n", end="")
    (out := ROOT / "bench" / "results").mkdir(exist_ok=True)
    (out / time.strftime("nlp_bench-%Y%m%dT%H%M%SZ.md", time.gmtime())).write_text(report)
    return 0 if o["errors"] == m["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
