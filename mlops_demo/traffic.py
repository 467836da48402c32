"""Production traffic for the demo: a held-out day as it was and a day shifted on purpose."""

from __future__ import annotations

CLEAN_DAY, DRIFT_DAY = "2013-06-28", "2013-07-05"  # a held-out day; a day shifted on purpose


def simulate_traffic(res: dict, spec) -> str:
    """Send a held-out day as it was and a day shifted on purpose, filed by event date;
    ground truth for the clean day arrives afterwards as a labels drop."""
    import json
    import uuid

    import httpx

    from mlops_assets.scenarios.classical.features import build_features
    from mlops_assets.scenarios.classical.source import flights_for_day
    from mlops_core.probes import azureml_payload

    endpoints = res["endpoints"]
    uri = endpoints.get(spec.online_endpoint).scoring_uri
    keys = endpoints.get_keys(spec.online_endpoint)  # replay: may set x-mlops-event-date
    clean = build_features(flights_for_day(CLEAN_DAY))
    drifted = build_features(flights_for_day(DRIFT_DAY))
    drifted = drifted.assign(
        distance=drifted["distance"] * 1.8,
        dep_hour=(drifted["dep_hour"] + 6).clip(upper=23),
        sched_arr_hour=(drifted["sched_arr_hour"] + 6).clip(upper=23),
    )
    labels, sent = [], 0
    with httpx.Client(timeout=30) as client:
        for day, frame in ((CLEAN_DAY, clean), (DRIFT_DAY, drifted)):
            for start in range(0, len(frame), 25):
                chunk, rid = frame.iloc[start : start + 25], uuid.uuid4().hex
                response = client.post(
                    uri,
                    json=azureml_payload(spec.codec.request_batch(chunk)),
                    headers={"Authorization": f"Bearer {keys['primary']}", "x-request-id": rid,
                             "x-mlops-event-date": day, "x-mlops-replay-key": keys["replay"]},
                )  # fmt: skip
                response.raise_for_status()
                sent += 1
                if day == CLEAN_DAY:
                    labels.append(json.dumps({"request_id": rid, "labels": chunk["late"].tolist()}))
    res["lake"].write_bytes(
        f"landing/classical/labels/{CLEAN_DAY}.jsonl", "\n".join(labels).encode()
    )
    return f"{sent} requests ({len(clean)} + {len(drifted)} flights)"
