"""Generic inference log: the online endpoint's data collection for one day, as rows.

The scoring server writes every scored request and response by event day; this
asset turns a day of them into one row per scored item (request id, row in
the request, deployment, model version, latency, prediction and the item's
own columns as the scenario's serving codec decodes them). Mirrored copies and
failed requests are left out. Monitoring partitions start on the scenario's
first day and have no end: production keeps going.
"""

from datetime import timedelta
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets import naming
from mlops_assets.partitions import partition_days
from mlops_core.spec import ScenarioSpec, ServingCodec
from resources.endpoint import EndpointError, OnlineEndpoints
from resources.lake import DataLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=2), warn_window=timedelta(days=1)
)
PREDICTION = "prediction"


def monitoring_days(spec: ScenarioSpec) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=spec.data.first_day)


def inference_log_path(scenario: str, day: str) -> str:
    return f"monitoring/{scenario}/inference_log/{day}.parquet"


def flatten_records(records: list[dict], codec: ServingCodec) -> "pd.DataFrame":
    """One row per scored item; mirrored copies and failed requests are left out."""
    import numpy as np
    import pandas as pd

    frames = []
    for r in records:
        if r.get("mirror") or r.get("status") != 200:
            continue
        frame = codec.log_rows(r["inputs"])
        frame.insert(0, "row", np.arange(len(frame)))
        frame.insert(0, "request_id", r["request_id"])
        for col in ("timestamp", "deployment", "model_name", "model_version", "latency_ms"):
            frame[col] = r[col]
        for name, values in codec.log_outputs(r["outputs"]).items():
            frame[name] = values
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def scored_image_path(scenario: str, digest: str) -> str:
    """Where the lake keeps a scored image's bytes: by content, stored once. A reference
    that is not `sha256:<hex>` is refused (a log line must not name a path)."""
    from mlops_core.labeling import image_path

    try:
        return image_path(scenario, digest)
    except ValueError as err:
        raise dg.Failure(f"the inference log names an image badly: {err}") from err


def collect_images(lake: DataLake, scenario: str, log_dir: str, digests: list[str]) -> int:
    """Copy the bytes of images the log names (the server keeps them by digest) into the
    lake, once per content; returns how many were new. A missing file fails, naming it."""
    from pathlib import Path

    new = 0
    for digest in dict.fromkeys(digests):
        target = scored_image_path(scenario, digest)  # checks the reference first
        if lake.exists(target):
            continue
        source = Path(log_dir) / "images" / target.rsplit("/", 1)[-1]
        if not source.exists():
            raise dg.Failure(f"the inference log names image {digest} but {source} is missing")
        lake.write_bytes(target, source.read_bytes())
        new += 1
    return new


def build_inference_log(spec: ScenarioSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=naming.key(spec.name, "inference_log"),
        deps=[naming.key(spec.name, "production_deployment")],
        group_name=naming.MONITORING,
        partitions_def=monitoring_days(spec),
        kinds={"pandas", "parquet"},
        owners=naming.OWNERS,
        tags=naming.scenario_tags(spec.name),
        freshness_policy=FRESHNESS,
    )
    def inference_log(
        context: dg.AssetExecutionContext, lake: DataLake, endpoints: OnlineEndpoints
    ) -> dg.MaterializeResult:
        """Requests and responses of the online endpoint, one row per scored item (daily)."""
        import numpy as np

        from serving.scoring.inference_log import iter_records

        try:
            log_dir = endpoints.get(spec.online_endpoint).extra["inference_log_dir"]
        except EndpointError as err:
            raise dg.Failure(f"no online endpoint to collect from: {err}") from err
        rows = requests = images = 0
        latencies: list[float] = []
        days = partition_days(context)
        for day in days:
            frame = flatten_records(list(iter_records(log_dir, day=day)), spec.codec)
            if spec.codec.kind == "image" and len(frame):
                images += collect_images(lake, spec.name, log_dir, frame["image"].tolist())
            lake.write_parquet(inference_log_path(spec.name, day), frame)
            rows += len(frame)
            if len(frame):
                per_request = frame.drop_duplicates("request_id")
                requests += len(per_request)
                latencies += per_request["latency_ms"].tolist()
        lat = np.array(latencies) if latencies else np.array([0.0])
        return dg.MaterializeResult(
            metadata={
                "requests": requests,
                "row_count": rows,
                **({"images_stored": images} if spec.codec.kind == "image" else {}),
                "p50_latency_ms": round(float(np.percentile(lat, 50)), 2),
                "p99_latency_ms": round(float(np.percentile(lat, 99)), 2),
                "path": dg.MetadataValue.path(lake.uri(inference_log_path(spec.name, days[0]))),
            }
        )

    return inference_log
