"""Benchmark: our scoring server (`python -m serving`) vs `mlflow models serve`, same model.

Run: `.venv/bin/python bench/serving_bench.py [--model DIR] [--seconds 5]` (not part of
the tests). Without --model it trains a small flights-like sklearn pipeline
(ColumnTransformer + OneHotEncoder + HistGradientBoosting, skops) into bench/results/.

Both servers get the identical `POST /invocations` `dataframe_split` body (ours also
gets its key); ours also writes and fsyncs every request to its inference log.
Each (rows per request, concurrency) cell runs a warm-up and then `--seconds` of
closed-loop load. The client is a minimal keep-alive HTTP/1.1 client on asyncio
(uvloop when present) so that on a small machine the client is not the bottleneck;
it checks every status code. Prints a table with ours/mlflow ratios and writes it
with the raw numbers to bench/results/serving_bench-<UTC time>.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
KEY = "bench-key-0123456789"
COLUMNS = ["dep_delay", "distance", "carrier", "hour"]
_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def rows(n: int, seed: int) -> list[list[Any]]:
    rng = np.random.default_rng(seed)
    return [
        [
            round(float(rng.normal(5, 20)), 2),
            int(rng.integers(100, 3000)),
            str(rng.choice(["AA", "B6", "DL", "UA", "WN"])),
            int(rng.integers(0, 24)),
        ]
        for _ in range(n)
    ]


def train_model(path: Path) -> Path:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame(rows(2000, seed=1), columns=COLUMNS)
    target = (frame.dep_delay + frame.hour > 20).astype(int)
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("carrier", OneHotEncoder(handle_unknown="ignore"), ["carrier"])],
                    remainder="passthrough",
                ),
            ),
            ("clf", HistGradientBoostingClassifier(max_iter=50, random_state=0)),
        ]
    ).fit(frame, target)
    mlflow.sklearn.save_model(
        model,
        path,
        signature=infer_signature(frame, model.predict(frame)),
        skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, probe: str, log: Path) -> subprocess.Popen[bytes]:
    # mlflow execs `uvicorn` from PATH: put this interpreter's scripts first.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": path}
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:4]} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{cmd[:4]} not ready")
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # mlflow runs uvicorn as a child: stop the group
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def request_bytes(port: int, body: bytes, key: str | None) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    return head.encode() + b"\r\n" + body


async def _connection(
    port: int,
    payload: bytes,
    stop_at: float,
    record_from: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (start := time.perf_counter()) < stop_at:
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(_LENGTH.search(head).group(1)))
            if start >= record_from:
                latencies.append(time.perf_counter() - start)
                if head[9:12] != b"200":
                    errors.append(int(head[9:12]))
    finally:
        writer.close()


async def _load(
    port: int, payload: bytes, concurrency: int, warmup: float, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    now = time.perf_counter()
    record_from, stop_at = now + warmup, now + warmup + seconds
    await asyncio.gather(
        *(
            _connection(port, payload, stop_at, record_from, latencies, errors)
            for _ in range(concurrency)
        )
    )
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / seconds,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def load(
    port: int, payload: bytes, concurrency: int, warmup: float, seconds: float
) -> dict[str, float]:
    try:
        import uvloop

        return uvloop.run(_load(port, payload, concurrency, warmup, seconds))
    except ImportError:
        return asyncio.run(_load(port, payload, concurrency, warmup, seconds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="MLflow sklearn model dir (default: train)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = RESULTS / f"serving_bench-{stamp}"
    work.mkdir(parents=True)
    model = (args.model or train_model(work / "model")).resolve()
    config = work / "serving.json"
    config.write_text(
        json.dumps(
            {
                "endpoint": "bench",
                "deployments": {"blue": {"model_path": str(model)}},
                "traffic": {"blue": 100},
                "keys": {"primary": KEY},
                "inference_log_dir": str(work / "inference_log"),
                "max_body_bytes": 1 << 20,
            }
        )
    )

    ours_port, mlflow_port = free_port(), free_port()
    ours_cmd = [sys.executable, "-m", "serving", "--config", str(config),
                "--port", str(ours_port), "--log-level", "warning"]  # fmt: skip
    mlflow_cmd = [str(Path(sys.executable).parent / "mlflow"), "models", "serve",
                  "-m", str(model), "-p", str(mlflow_port), "-h", "127.0.0.1",
                  "--workers", "1", "--env-manager", "local"]  # fmt: skip
    servers: dict[str, tuple[int, str | None, subprocess.Popen[bytes]]] = {}
    results: list[dict[str, Any]] = []
    try:
        servers["ours"] = (ours_port, KEY, start(ours_cmd, ours_port, "/health", work / "ours.log"))
        servers["mlflow"] = (
            mlflow_port,
            None,
            start(mlflow_cmd, mlflow_port, "/ping", work / "mlflow.log"),
        )
        for n in args.rows:
            body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows(n, 7)}})
            answers = {
                name: httpx.post(
                    f"http://127.0.0.1:{port}/invocations",
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        **({"Authorization": f"Bearer {key}"} if key else {}),
                    },
                ).json()
                for name, (port, key, _) in servers.items()
            }
            if answers["ours"] != answers["mlflow"]:
                raise AssertionError(f"servers disagree on {n} rows: {answers}")
            for c in args.concurrency:
                cell: dict[str, Any] = {"rows": n, "concurrency": c}
                for name, (port, key, _) in servers.items():
                    cell[name] = load(
                        port, request_bytes(port, body.encode(), key), c, args.warmup, args.seconds
                    )
                    print(
                        f"  {n:>3} rows c={c:<3} {name:<6} {cell[name]['rps']:9.1f} rps",
                        file=sys.stderr,
                    )
                results.append(cell)
    finally:
        for _, _, proc in servers.values():
            stop(proc)

    lines = [
        "| rows | conc | ours rps | ours p50 ms | ours p99 ms | mlflow rps | mlflow p50 ms"
        " | mlflow p99 ms | rps ours/mlflow | p50 mlflow/ours |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in results:
        o, m = cell["ours"], cell["mlflow"]
        lines.append(
            f"| {cell['rows']} | {cell['concurrency']} | {o['rps']:.0f} | "
            f"{o['p50_ms']:.2f} | {o['p99_ms']:.2f} | {m['rps']:.0f} | "
            f"{m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {o['rps'] / m['rps']:.1f}x | "
            f"{m['p50_ms'] / o['p50_ms']:.1f}x |"
        )
    errors = sum(c[s]["errors"] for c in results for s in ("ours", "mlflow"))
    lines.append(
        f"\n{os.cpu_count()} CPUs, {args.seconds:g} s per cell after {args.warmup:g} s "
        f"warm-up, non-200 answers: {errors}"
    )
    table = "\n".join(lines)
    print(table)
    (RESULTS / f"serving_bench-{stamp}.md").write_text(table + "\n")
    (RESULTS / f"serving_bench-{stamp}.json").write_text(json.dumps(results, indent=2))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
