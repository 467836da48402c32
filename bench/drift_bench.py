"""Benchmark: our drift detection vs Evidently's DataDriftPreset on 1M current x 1M reference rows.

Run: `.venv/bin/python bench/drift_bench.py [--rows N]` (not part of the tests). Writes the
printed report to `bench/results/drift_bench.txt`.

Data (seeded, synthetic but shaped like product data): 20 numeric columns (log-normal amounts,
mixtures, zero-inflated, heavy-tailed, integer counts, a 5-level rating and a 0/1 flag, a model
score) and 5 categorical ones (3 to 2,000 levels, Zipf-like). The current frame shifts
amount, score, temp, latency_ms, rating, country and device; the rest is drawn afresh from the
reference's distributions.

Each method runs in its own subprocess that first builds the frames (not measured), then resets
the peak-RSS counter (`/proc/self/clear_refs` = 5) and measures wall time and peak RSS of the
call alone ("extra": peak minus the RSS before the call):
- build: `build_reference(reference)` (once per training run, reported separately);
- detect: `detect_drift(profile, current)`, the profile read from the build step's JSON;
- evidently: `Report([DataDriftPreset()], include_tests=True).run(current, reference)`
  (evidently 0.7 API, the same call the tests compare against).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_core.monitoring.drift import (  # noqa: E402
    ReferenceProfile,
    build_reference,
    detect_drift,
)

RESULTS = ROOT / "bench" / "results" / "drift_bench.txt"
SHIFTED = ["amount", "score", "temp", "latency_ms", "rating", "country", "device"]


def _levels(prefix: str, n: int) -> np.ndarray:
    return np.asarray([f"{prefix}{i}" for i in range(n)], dtype=object)


def _zipf_pick(rng: np.random.Generator, levels: np.ndarray, n: int, a: float) -> np.ndarray:
    p = 1.0 / np.arange(1, levels.size + 1) ** a
    return levels[rng.choice(levels.size, n, p=p / p.sum())]


def _numeric(rng: np.random.Generator, n: int, s: float) -> dict[str, np.ndarray]:
    """20 numeric columns; `s` = 1 applies the current frame's shifts."""
    city = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    ages = np.where(rng.random(n) < 0.6, rng.normal(30, 6, n), rng.normal(52, 9, n))
    balance = rng.normal(1000, 300, n)
    balance[rng.random(n) < 0.03] = np.nan
    clicks = rng.negative_binomial(2, 0.3, n)
    return {
        "amount": rng.lognormal(3.5, 0.9, n) * (1 + 0.25 * s),
        "session_s": np.where(
            rng.random(n) < 0.95, rng.exponential(120, n), rng.exponential(2000, n)
        ),
        "age": np.clip(np.round(ages), 18, 90),
        "income": rng.lognormal(10.5, 0.6, n),
        "n_items": rng.poisson(3, n) + 1,
        "score": rng.beta(2 + 0.8 * s, 5, n),
        "temp": rng.normal(15 + 4 * s, 8, n) + 5 * np.sin(rng.random(n) * 2 * np.pi),
        "latency_ms": 50 + 10 * np.abs(rng.standard_t(2 - 0.5 * s, n)),
        "discount": np.where(rng.random(n) < 0.6, 0.0, rng.uniform(5, 50, n)),
        "rating": rng.choice([1, 2, 3, 4, 5], n, p=[0.05, 0.1, 0.2, 0.35 - 0.2 * s, 0.3 + 0.2 * s]),
        "is_weekend": (rng.random(n) < 2 / 7).astype(np.int64),
        "lat": np.array([40.7, 34.0, 41.9])[city] + rng.normal(0, 0.2, n),
        "lon": np.array([-74.0, -118.2, -87.6])[city] + rng.normal(0, 0.2, n),
        "tenure_days": rng.gamma(2, 200, n),
        "balance": balance,
        "clicks": clicks,
        "ctr": clicks / (clicks + rng.poisson(40, n) + 1),
        "price": np.round(rng.lognormal(3, 0.7, n)) + 0.99,
        "dist_km": rng.weibull(1.5, n) * 12,
        "hour": np.where(rng.random(n) < 0.5, rng.normal(9, 2, n), rng.normal(19, 2, n)).astype(int)
        % 24,
    }


def _categorical(rng: np.random.Generator, n: int, s: float) -> dict[str, np.ndarray]:
    device = rng.choice(
        np.asarray(["mobile", "desktop", "tablet", "tv"], dtype=object),
        n,
        p=[0.6 - 0.1 * s, 0.3 - 0.05 * s, 0.1, 0.15 * s],
    )
    return {
        "country": _zipf_pick(rng, _levels("c", 30), n, 1.1 - 0.6 * s),
        "device": device,
        "plan": rng.choice(np.asarray(["free", "basic", "pro", "ent"], dtype=object), n),
        "channel": _zipf_pick(rng, _levels("ch", 8), n, 0.8),
        "merchant": _zipf_pick(rng, _levels("m", 2000), n, 1.0),
    }


def make_frame(n: int, shifted: bool, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = 1.0 if shifted else 0.0
    return pd.DataFrame({**_numeric(rng, n, s), **_categorical(rng, n, s)})


def columns() -> tuple[list[str], list[str]]:
    frame = make_frame(10, False, 0)
    numerical = [c for c in frame if pd.api.types.is_numeric_dtype(frame[c])]
    return numerical, [c for c in frame if c not in numerical]


# -- measurement ---------------------------------------------------------------------------------


def _proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measured(fn):
    """(result, seconds, peak extra MiB, peak MiB) of fn() alone."""
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _proc_status_kb("VmRSS")
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    peak = _proc_status_kb("VmHWM")
    return result, seconds, (peak - before) / 1024, peak / 1024


def child_build(rows: int, work: Path) -> dict:
    numerical, categorical = columns()
    reference = make_frame(rows, False, seed=1)
    profile, sec, extra, peak = measured(lambda: build_reference(reference, numerical, categorical))
    text = profile.to_json()
    (work / "profile.json").write_text(text)
    errors = {c.name: c.sample_error / max(c.std, 1e-3) for c in profile.columns.values() if c.std}
    return {
        "seconds": sec,
        "extra_mib": extra,
        "peak_mib": peak,
        "profile_bytes": len(text),
        "sampled": [c.name for c in profile.columns.values() if not c.exact],
        "max_error_bound": max(errors.values()),
    }


def child_detect(rows: int, work: Path) -> dict:
    current = make_frame(rows, True, seed=2)
    profile = ReferenceProfile.from_json((work / "profile.json").read_text())
    report, sec, extra, peak = measured(lambda: detect_drift(profile, current))
    verdicts = {
        c.column: [c.stattest_display_name, c.score, c.drifted, c.max_score_error]
        for c in report.columns
    }
    return {"seconds": sec, "extra_mib": extra, "peak_mib": peak, "verdicts": verdicts}


def child_evidently(rows: int, work: Path) -> dict:
    warnings.simplefilter("ignore")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical, categorical = columns()
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    reference = make_frame(rows, False, seed=1)
    current = make_frame(rows, True, seed=2)
    datasets = [Dataset.from_pandas(f, data_definition=definition) for f in (current, reference)]
    report = Report([DataDriftPreset()], include_tests=True)
    snapshot, sec, extra, peak = measured(lambda: report.run(*datasets))
    raw = snapshot.dict()
    failed = {t["metric_config"]["metric_id"] for t in raw["tests"] if t["status"] == "FAIL"}
    verdicts = {
        m["config"]["column"]: [m["config"]["method"], float(m["value"]), m["id"] in failed]
        for m in raw["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }
    version = importlib.metadata.version("evidently")
    return {
        "seconds": sec,
        "extra_mib": extra,
        "peak_mib": peak,
        "verdicts": verdicts,
        "version": version,
    }


CHILDREN = {"build": child_build, "detect": child_detect, "evidently": child_evidently}


def run_child(name: str, rows: int, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--rows", str(rows), "--work", str(work)]
    subprocess.run(cmd, check=True)
    return json.loads((work / f"{name}.json").read_text())


# -- report --------------------------------------------------------------------------------------


def differences(ours: dict, theirs: dict) -> list[str]:
    lines = []
    for col, (method, score, drifted, bound) in ours.items():
        e_method, e_score, e_drifted = theirs[col]
        if (method, drifted) != (e_method, e_drifted):
            lines.append(
                f"  {col}: ours {method} {score:.6g} drifted={drifted} | "
                f"evidently {e_method} {e_score:.6g} drifted={e_drifted} (bound {bound:.2g})"
            )
    return lines


def _row(label: str, r: dict) -> str:
    return (
        f"{label:<34}{r['seconds']:>10.2f} s{r['extra_mib']:>12.0f} MiB{r['peak_mib']:>12.0f} MiB"
    )


def render(rows: int, build: dict, detect: dict, evid: dict) -> str:
    numerical, categorical = columns()
    ours, theirs = detect["verdicts"], evid["verdicts"]
    score_diff = max(abs(ours[c][1] - theirs[c][1]) for c in ours)
    diffs = differences(ours, theirs)
    lines = [
        f"drift bench: {rows:,} current x {rows:,} reference rows, "
        f"{len(numerical)} numeric + {len(categorical)} categorical columns",
        f"machine: {os.cpu_count()} CPUs; numpy {np.__version__}, pandas {pd.__version__}, "
        f"evidently {evid['version']}",
        f"{'':34}{'time':>12}{'peak extra':>16}{'peak RSS':>16}",
        _row("build_reference (once, training)", build),
        _row("detect_drift", detect),
        _row("evidently DataDriftPreset", evid),
        f"speed: evidently / detect_drift = {evid['seconds'] / detect['seconds']:.1f}x "
        f"(target >= 20x); evidently / (build + detect) = "
        f"{evid['seconds'] / (build['seconds'] + detect['seconds']):.1f}x",
        f"profile JSON: {build['profile_bytes'] / 1e6:.2f} MB; sampled columns: "
        f"{len(build['sampled'])} (max score error bound {build['max_error_bound']:.2g})",
        f"drifted (ours):      {sorted(c for c, v in ours.items() if v[2])}",
        f"drifted (evidently): {sorted(c for c, v in theirs.items() if v[2])}",
        f"max |score difference|: {score_diff:.3g}",
        f"per-column verdicts that differ: {len(diffs)}",
        *diffs,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.child:
        result = CHILDREN[args.child](args.rows, args.work)
        (args.work / f"{args.child}.json").write_text(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = [run_child(name, args.rows, work) for name in ("build", "detect", "evidently")]
    text = render(args.rows, *results)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()
