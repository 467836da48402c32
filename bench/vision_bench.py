"""Benchmark: the vision model online (ours vs `mlflow models serve`) and in batch (vs a floor).

`.venv/bin/python bench/vision_bench.py [--seconds 20]`, not a test. Untimed: `fit` on 5,000 images
(1 epoch), logged with vision/train.py's `log_model` arguments to a temporary MLflow store; all
contenders load it, all with OMP_NUM_THREADS=1. Online: 16 keep-alive connections, one new PNG
per request, warm-up, --seconds per server; ours as serving_bench starts it (key, fsynced log that
stores each new image) on /score, `mlflow models serve --env-manager local` on /invocations. Batch,
per layout in a fresh interpreter: floor = read parquet, decode PNGs, one torch forward, write, in
1 process (weights loaded first) and 1 spawned process per core (start included); ours = the
`batch_predictions` asset's `run_batch(batch_job(SPEC, ...))`, default settings, cold, then warm.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
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
KEY, CONCURRENCY, POOL, WARMUP = "bench-key-0123456789", 16, 50_000, 3.0  # POOL: online images
LOADAVG = Path("/proc/loadavg")
LAYOUTS = {"1 day x 5,000": (1, 5000), "10 days x 500": (10, 500)}
_FLOOR: tuple = ()


def log_model(home: Path, n: int = 5000) -> str:
    import mlflow
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from mlops_assets.scenarios.vision.source import load
    from mlops_core import image_models

    train = load("train")
    x = train.images[:n].astype("float32") / 255  # what decoding their PNGs gives
    net = image_models.fit(x, train.labels[:n], len(train.classes), epochs=1)
    classifier = image_models.ImageClassifier(list(train.classes))
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    exp = mlflow.create_experiment("vision-bench", (home / "artifacts").as_uri())
    torch.save(net.state_dict(), weights := home / "weights.pt")
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.pyfunc.log_model(  # the arguments of vision/train.py
            name="model", python_model=classifier, artifacts={"weights": str(weights)},
            signature=ModelSignature(inputs=Schema([ColSpec("binary", "image")]), outputs=Schema(
                [ColSpec("string", "label"), ColSpec("double", "probability")])),
            metadata=image_models.metadata(classifier.size, classifier.mode, "classification"),
            pip_requirements=image_models.pip_requirements(),
        )  # fmt: skip
    return mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(home / "model"))


def floor_score(model: str, classes: list[str], jobs: list[tuple[str, str, int, int]]) -> int:
    global _FLOOR
    import numpy as np
    import pandas as pd
    import torch
    from PIL import Image

    from mlops_core.image_models import build_network

    if not _FLOOR:
        _FLOOR = (net := build_network(len(classes)).eval(),)
        net.load_state_dict(torch.load(f"{model}/artifacts/weights.pt", weights_only=True))
    net, rows = _FLOOR[0], 0
    for src, dst, lo, hi in jobs:
        frame = pd.read_parquet(src).iloc[lo:hi]
        x = np.stack([np.asarray(Image.open(io.BytesIO(p)), np.float32) for p in frame["png"]])
        with torch.inference_mode():
            proba = torch.softmax(net(torch.from_numpy(x / 255).unsqueeze(1)), 1).numpy()
        best = proba.argmax(1)
        frame[["image_id", "digest"]].assign(label=np.asarray(classes, dtype=object)[best],
            probability=proba[np.arange(len(best)), best].astype(np.float64), model_version="1",
        ).to_parquet(dst, index=False)  # fmt: skip
        rows += len(frame)
    return rows


def batch_case(home: Path, model: str, n_days: int, per_day: int) -> dict:
    import multiprocessing as mp

    import pandas as pd

    from mlops_assets.deployment.batch_predictions import batch_job, predictions_path
    from mlops_assets.scenarios.vision import SPEC, data_assets
    from mlops_core.batch import BatchSettings
    from mlops_core.batch_pool import run_batch
    from resources.lake import LocalLake

    lake, n, files = home / "lake", os.cpu_count() or 1, []
    # raw_images' own days (500 test images each); the 1-day layout is 10 of them as one day
    raw = [data_assets.day_images(f"2024-06-{d:02d}")[0] for d in range(1, 11)]
    days = [f"2024-06-{d + 1:02d}" for d in range(n_days)]
    for day, frame in zip(days, [pd.concat(raw)] if n_days == 1 else raw, strict=True):
        (path := lake / data_assets.raw_path(day)).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        files.append((str(path), str(home / day)))
    floor_score(model, classes := list(SPEC.labeling.classes), [])
    started = time.perf_counter()
    rows1 = floor_score(model, classes, [(s, f"{t}.parquet", 0, per_day) for s, t in files])
    times = {"floor1": time.perf_counter() - started}
    size = -(-len(files) // n) if len(files) >= n else -(-per_day // n)
    parts = (  # contiguous days per process, or contiguous rows of the one day
        [[(s, f"{t}-n.parquet", 0, per_day) for s, t in files[i : i + size]]
         for i in range(0, len(files), size)] if len(files) >= n else
        [[(s, f"{t}-{k}.parquet", k * size, (k + 1) * size) for s, t in files] for k in range(n)]
    )  # fmt: skip
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(len(parts)) as pool:
        rows_n = sum(pool.starmap(floor_score, [(model, classes, p) for p in parts], chunksize=1))
    times["floor_n"] = time.perf_counter() - started
    job = batch_job(SPEC, LocalLake(root=str(lake)), model, "1", "bench", "predictions.parquet")
    for name in ("ours_cold", "ours_warm"):
        started = time.perf_counter()
        report = run_batch(job, days, BatchSettings())
        times[name] = time.perf_counter() - started
    for day in days:  # the floor answers what the product answers
        a = pd.read_parquet(lake / predictions_path("vision", day))
        b = pd.read_parquet(home / f"{day}.parquet")
        assert (a.label == b.label).all() and (a.probability - b.probability).abs().max() < 2e-6
    assert sum(report.rows.values()) == rows1 == rows_n == n_days * per_day
    return {"rows": rows1, **times, "procs": len(parts), "workers": report.workers,
            "mini_batches": report.mini_batches}  # fmt: skip


async def _load(port: int, payloads: list[bytes], warmup: float, seconds: float) -> dict:
    from bench.serving_bench import _LENGTH  # serving_bench's client, cycling over payloads

    lat, errors, now = [], [], time.perf_counter()

    async def connection(mine: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        while (start := time.perf_counter()) < now + warmup + seconds:
            writer.write(mine[i % len(mine)])
            head, i = await reader.readuntil(b"\r\n\r\n"), i + 1
            await reader.readexactly(int(_LENGTH.search(head).group(1)))
            if start >= now + warmup:
                lat.append(time.perf_counter() - start)
                errors.extend([] if head[9:12] == b"200" else [int(head[9:12])])
        writer.close()

    await asyncio.gather(*(connection(payloads[k::CONCURRENCY]) for k in range(CONCURRENCY)))
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    return {"requests": len(lat), "errors": len(errors), "rps": len(lat) / seconds,
            "p50_ms": pick(0.5), "p99_ms": pick(0.99)}  # fmt: skip


def online(work: Path, model: str, warmup: float, seconds: float) -> dict:
    import httpx
    import uvloop

    from bench.serving_bench import free_port, request_bytes, start, stop
    from mlops_assets.scenarios.vision.source import load
    from serving.scoring.images import encode_png

    b64 = [base64.b64encode(encode_png(im)).decode() for im in load("train").images[-POOL:]]
    (config := work / "serving.json").write_text(json.dumps({
        "endpoint": "vision-bench", "deployments": {"blue": {"model_path": model}},
        "traffic": {"blue": 100}, "keys": {"primary": KEY},
        "inference_log_dir": str(work / "inference_log"), "max_body_bytes": 1 << 20,
    }))  # fmt: skip
    po, pm = free_port(), free_port()
    sides = {  # name: (command, port, probe, route, key, body of one image, its answer)
        "ours": ([sys.executable, "-m", "serving", "--config", str(config), "--port", str(po),
                  "--log-level", "warning"], po, "/health", "/score", KEY,
                 lambda s: {"input_data": {"columns": ["image"], "index": [0], "data": [[s]]}},
                 lambda a: a[0]),
        "mlflow": ([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
                    model, "-p", str(pm), "-h", "127.0.0.1", "--workers", "1",
                    "--env-manager", "local"], pm, "/ping", "/invocations", None,
                   lambda s: {"dataframe_split": {"columns": ["image"], "data": [[s]]}},
                   lambda a: a["predictions"][0]),
    }  # fmt: skip
    procs, out, answers = [], {}, {}
    try:
        for name, (cmd, port, probe, route, key, body, answer) in sides.items():
            procs.append(start(cmd, port, probe, work / f"{name}.log"))
            auth = {"Authorization": f"Bearer {key}"} if key else {}
            answers[name] = [answer(httpx.post(f"http://127.0.0.1:{port}{route}", json=body(s),
                                               headers=auth).json()) for s in b64[:32]]  # fmt: skip
        assert answers["ours"] == answers["mlflow"], answers
        for name, (_, port, _, route, key, body, _) in sides.items():
            payloads = [request_bytes(port, json.dumps(body(s)).encode(), key)
                        .replace(b"/invocations", route.encode(), 1) for s in b64]  # fmt: skip
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
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, per server")
    args = parser.parse_args()
    began, load_start, batch = time.perf_counter(), LOADAVG.read_text().rsplit(" ", 2)[0], {}
    with tempfile.TemporaryDirectory() as tmp:
        model = log_model(Path(tmp))
        for i, (label, layout) in enumerate(LAYOUTS.items()):
            case = [sys.executable, __file__, "--case", f"{tmp}/b{i}", model, *map(str, layout)]
            run = subprocess.run(case, check=True, capture_output=True, text=True).stdout
            batch[label] = json.loads(run.strip().splitlines()[-1])
        on = online(Path(tmp), model, WARMUP, args.seconds)
    o, m, ok = on["ours"], on["mlflow"], lambda met: "met" if met else "MISSED"
    lines = [
        f"vision bench: {os.cpu_count()} CPUs, load average at start {load_start}, "
        "OMP_NUM_THREADS=1 for both servers and every batch process", "",
        "| online: 1 PNG/request, 16 connections | req/s | p50 ms | p99 ms | requests | non-200 |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {n} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['requests']} | "
          f"{r['errors']} |" for n, r in (("ours, /score", o), ("mlflow models serve", m))),
        f"| ours / mlflow (goals: >= 5x req/s, lower p99) | {o['rps'] / m['rps']:.2f}x "
        f"{ok(o['rps'] >= 5 * m['rps'])} | {o['p50_ms'] / m['p50_ms']:.2f}x | "
        f"{o['p99_ms'] / m['p99_ms']:.2f}x {ok(o['p99_ms'] < m['p99_ms'])} | {args.seconds:g} s "
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
    (out / time.strftime("vision_bench-%Y%m%dT%H%M%SZ.md", time.gmtime())).write_text(report)
    return 0 if o["errors"] == m["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
