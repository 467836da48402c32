"""Tests run against a live endpoint before and during a rollout; no Dagster imports.

- `smoke`: the endpoint's predictions equal the model's in-process predictions.
- `load_test`: a bounded concurrent load (count and time capped) measuring
  latency percentiles, throughput and errors.
- `bad_input_suite`: client mistakes must get a 4xx, never a 5xx, and the
  server must still answer afterwards.
- `package_violations`: the model's requirements against the allowlist
  (`mlops_core.governance.allowlist`, re-exported here for the staging stage).
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mlops_core.governance.allowlist import (  # noqa: F401
    ALLOWLIST_PATH,
    Allowlist,
    load_allowlist,
    package_violations,
)

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd


def azureml_payload(frame: pd.DataFrame) -> dict[str, Any]:
    """Azure ML's request shape; NaN becomes null as JSON has no NaN."""
    clean = frame.astype(object).where(frame.notna(), None)
    return {
        "input_data": {
            "columns": list(frame.columns),
            "index": list(range(len(frame))),
            "data": clean.to_numpy().tolist(),
        }
    }


def _headers(key: str, deployment: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if deployment:
        headers["azureml-model-deployment"] = deployment
    return headers


def same_answer(got: Any, expected: Any, tolerance: float = 1e-4) -> bool:
    """Equal answers, probabilities within `tolerance`: a server's threads sum a network's
    products in another order than one in-process call, which moves the last float digits."""
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(
            same_answer(got[k], expected[k], tolerance) for k in got
        )
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(
            same_answer(a, b, tolerance) for a, b in zip(got, expected, strict=True)
        )
    if isinstance(got, float) and isinstance(expected, float):
        return math.isclose(got, expected, abs_tol=tolerance)
    return got == expected


def smoke(
    base_url: str, key: str, deployment: str | None, payload: dict[str, Any], expected: list
) -> dict[str, Any]:
    """One request of `payload` (the codec's encoding); answers must equal `expected`."""
    import httpx

    response = httpx.post(
        f"{base_url}/score",
        json=payload,
        headers=_headers(key, deployment),
        timeout=30,
    )
    if response.status_code != 200:
        return {"passed": False, "status": response.status_code, "detail": response.text[:300]}
    got = response.json()
    mismatches = sum(1 for a, b in zip(got, expected, strict=False) if not same_answer(a, b))
    mismatches += abs(len(got) - len(expected))
    return {
        "passed": mismatches == 0,
        "status": 200,
        "rows": len(expected),
        "mismatches": mismatches,
        "answered_by": response.headers.get("azureml-model-deployment", ""),
    }


def load_test(
    base_url: str,
    key: str,
    deployment: str | None,
    payload: dict[str, Any],
    requests: int = 300,
    concurrency: int = 8,
    max_seconds: float = 30.0,
) -> dict[str, Any]:
    """Send up to `requests` requests from `concurrency` threads, stopping at `max_seconds`."""
    import httpx
    import numpy as np

    body = json.dumps(payload).encode()
    headers = {**_headers(key, deployment), "Content-Type": "application/json"}
    deadline = time.monotonic() + max_seconds
    per_thread = math.ceil(requests / concurrency)

    def worker(_: int) -> list[tuple[int, float]]:
        out = []
        with httpx.Client(timeout=10) as client:
            for _ in range(per_thread):
                if time.monotonic() > deadline:
                    break
                start = time.perf_counter()
                try:
                    status = client.post(
                        f"{base_url}/score", content=body, headers=headers
                    ).status_code
                except httpx.HTTPError:
                    status = 0  # connection failure counts as an error
                out.append((status, (time.perf_counter() - start) * 1000))
        return out

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        results = [r for chunk in pool.map(worker, range(concurrency)) for r in chunk]
    elapsed = time.monotonic() - started
    latencies = np.array([ms for _, ms in results]) if results else np.array([float("nan")])
    errors = sum(1 for status, _ in results if status != 200)
    return {
        "requests": len(results),
        "errors": errors,
        "error_rate": errors / max(len(results), 1),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "rps": len(results) / elapsed if elapsed else 0.0,
    }


def bad_input_cases(frame: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    """Named client mistakes: (body, content type). `frame` is a valid request's rows."""
    import pandas as pd

    good = azureml_payload(frame.head(2))
    cols = good["input_data"]["columns"]
    numeric = next(c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]))
    text = next(c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]))

    def variant(**change: Any) -> bytes:
        data = json.loads(json.dumps(good))
        data["input_data"].update(change)
        return json.dumps(data).encode()

    rows = good["input_data"]["data"]
    wrong_type = [list(r) for r in rows]
    wrong_type[0][cols.index(numeric)] = "not-a-number"
    nan_row = [list(r) for r in rows]
    nan_row[0][cols.index(numeric)] = float("nan")
    not_text = [list(r) for r in rows]
    not_text[0][cols.index(text)] = {"nested": True}
    js = "application/json"
    return {
        "malformed_json": (b'{"input_data": {"columns": [', js),
        "not_an_object": (b"[1, 2, 3]", js),
        "missing_input_data": (b'{"data": []}', js),
        "missing_column": (variant(columns=cols[1:], data=[r[1:] for r in rows]), js),
        "extra_column": (variant(columns=[*cols, "surprise"], data=[[*r, 1] for r in rows]), js),
        "ragged_rows": (variant(data=[rows[0][:-1], rows[1]]), js),
        "wrong_type": (variant(data=wrong_type), js),
        "nan_value": (json.dumps(json.loads(variant(data=nan_row))).encode(), js),
        "object_in_text_column": (variant(data=not_text), js),
        "wrong_content_type": (variant(), "text/plain"),
        "huge_body": (b'{"input_data": {"data": [' + b"1," * (3 << 20) + b"1]}}", js),
    }


def bad_input_suite(
    base_url: str, key: str, deployment: str | None, cases: dict[str, tuple[bytes, str]]
) -> list[dict[str, Any]]:
    """Send each named client mistake; each must get a 4xx, and the server must still serve."""
    import httpx

    results = []
    with httpx.Client(timeout=30) as client:
        for case, (body, content_type) in cases.items():
            headers = {**_headers(key, deployment), "Content-Type": content_type}
            try:
                response = client.post(f"{base_url}/score", content=body, headers=headers)
                status, detail = response.status_code, response.text[:160]
            except httpx.HTTPError as err:
                status, detail = 0, str(err)
            results.append(
                {"case": case, "status": status, "ok": 400 <= status < 500, "detail": detail}
            )
        healthy = client.get(f"{base_url}/health").status_code == 200
    results.append(
        {"case": "still_serving", "status": 200 if healthy else 0, "ok": healthy, "detail": ""}
    )
    return results
