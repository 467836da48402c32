"""Framework-free parts: parsing, signature checks, batching, routing, settings, log reader."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.metrics import Metrics
from serving.routing import Router
from serving.scoring import InputError, InputSchema, ServedModel, parse_azureml, parse_mlflow
from serving.scoring.inference_log import days, iter_records, log_file
from serving.scoring.model import ModelLoadError
from serving.settings import ConfigError, ServingSettings
from tests.serving.conftest import COLUMNS, make_config, rows

SCHEMA = InputSchema.from_signature_json(
    json.dumps(
        [
            {"name": "x", "type": "double"},
            {"name": "n", "type": "long"},
            {"name": "s", "type": "string"},
            {"name": "b", "type": "boolean", "required": False},
            {"name": "f", "type": "float", "required": False},
            {"name": "i", "type": "integer", "required": False},
            {"name": "t", "type": "datetime", "required": False},
            {"name": "bin", "type": "binary", "required": False},
        ]
    )
)


def test_all_payload_shapes_give_the_same_columns() -> None:
    data = [[1.0, 2, "a"], [3.5, 4, "b"]]
    cols = ["x", "n", "s"]
    records = [dict(zip(cols, r, strict=True)) for r in data]
    columnar = {c: [r[i] for r in data] for i, c in enumerate(cols)}
    tables = [
        parse_azureml({"input_data": {"columns": cols, "index": [0, 1], "data": data}}),
        parse_azureml({"input_data": records}),
        parse_mlflow({"dataframe_split": {"columns": cols, "data": data}}),
        parse_mlflow({"dataframe_records": records, "params": {}}),
        parse_mlflow({"instances": records}),
        parse_mlflow({"instances": columnar}),
        parse_mlflow({"inputs": columnar}),
        parse_mlflow({"inputs": records}),
    ]
    for table in tables:
        arrays = SCHEMA.to_arrays(table)
        assert list(arrays) == list(SCHEMA.names)
        assert arrays["x"].dtype == np.float64 and arrays["x"].tolist() == [1.0, 3.5]
        assert arrays["n"].dtype == np.int64 and arrays["s"].tolist() == ["a", "b"]
        assert np.isnan(arrays["f"]).all() and arrays["b"].tolist() == [None, None]
        assert [list(r) for r in table.log_rows()] == data


def test_single_row_of_scalars() -> None:
    table = parse_mlflow({"inputs": {"x": 1, "n": 2, "s": "z"}})
    assert table.nrows == 1 and SCHEMA.to_arrays(table)["s"].tolist() == ["z"]


def test_typed_columns() -> None:
    table = parse_mlflow(
        {
            "dataframe_split": {
                "columns": ["x", "n", "s", "b", "f", "i", "t", "bin"],
                "data": [
                    [1, 2, "a", True, 0.5, 7, "2024-01-02T03:04:05", "aGk="],
                    [2.5, 3, "b", None, None, None, None, None],
                ],
            }
        }
    )
    arrays = SCHEMA.to_arrays(table)
    assert arrays["x"].tolist() == [1.0, 2.5]  # an integer is a valid double
    assert arrays["f"].dtype == np.float32 and np.isnan(arrays["f"][1])
    assert arrays["i"].tolist()[0] == 7 and np.isnan(arrays["i"][1])  # missing ints -> float
    assert arrays["t"].dtype == np.dtype("datetime64[ns]") and np.isnat(arrays["t"][1])
    assert arrays["bin"].tolist() == [b"hi", None]
    assert arrays["b"].tolist() == [True, None]


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("i", 2**40, "out_of_range"),
        ("f", 1e300, "non_finite_value"),
        ("b", 1, "invalid_type"),
        ("t", "not a date", "invalid_type"),
        ("bin", "%%%", "invalid_type"),
        ("s", None, "null_value"),
        ("x", "1.5", "invalid_type"),
    ],
)
def test_typed_column_errors(column: str, value: Any, code: str) -> None:
    row = {"x": 1.0, "n": 1, "s": "a", column: value}
    with pytest.raises(InputError) as err:
        SCHEMA.to_arrays(parse_mlflow({"dataframe_records": [row]}))
    assert err.value.code == code and f"'{column}'" in err.value.message


def test_unsupported_signatures_are_refused_at_load() -> None:
    with pytest.raises(ValueError, match="unsupported signature input"):
        InputSchema.from_signature_json('[{"type": "tensor", "tensor-spec": {}}]')
    with pytest.raises(ValueError, match="unsupported signature input"):
        InputSchema.from_signature_json('[{"name": "a", "type": "array", "items": {}}]')


def test_served_model_batches_like_single_calls(models: dict[str, Path]) -> None:
    model = ServedModel(models["green"])
    tables = [
        parse_azureml({"input_data": {"columns": COLUMNS, "data": rows(n, n)}}) for n in (1, 4, 2)
    ]
    inputs = [(model.schema.to_arrays(t), t.nrows) for t in tables]
    assert model.predict_arrays(inputs) == [model.predict(a, n) for a, n in inputs]
    assert model.describe()["flavor"] == "sklearn"


def test_model_dir_without_signature_is_refused(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors:\n  sklearn: {}\n")
    with pytest.raises(ModelLoadError, match="no input signature"):
        ServedModel(tmp_path)
    with pytest.raises(ModelLoadError, match="cannot read"):
        ServedModel(tmp_path / "missing")


def test_router_follows_the_weights_and_is_stable() -> None:
    router = Router({"blue": 90, "green": 10, "red": 0}, {"red": 25})
    ids = [str(uuid.UUID(int=i * 7919 + 1, version=4)) for i in range(20000)]
    picks = Counter(router.pick(i) for i in ids)
    assert abs(picks["green"] / len(ids) - 0.10) < 0.015 and "red" not in picks
    mirrored = sum(bool(router.mirrors(i, router.pick(i))) for i in ids)
    assert abs(mirrored / len(ids) - 0.25) < 0.015
    assert router.pick(ids[0]) == router.pick(ids[0])
    assert Router({"a": 100}, {"a": 100}).mirrors("x", "a") == []  # never to the answerer


def test_request_metrics_are_cumulative_and_per_app() -> None:
    metrics = Metrics()
    for seconds in (0.0004, 0.001, 0.003, 20.0):
        metrics.observe("blue", 200, seconds)
    metrics.observe("", 401, 0.0001)  # refused before routing: counted, no latency
    metrics.observe_mirror("green", 500)
    value = metrics.registry.get_sample_value
    bucket = "request_latency_seconds_bucket"
    assert value(bucket, {"deployment": "blue", "le": "0.001"}) == 2  # le: bounds included
    assert value(bucket, {"deployment": "blue", "le": "10.0"}) == 3
    assert value(bucket, {"deployment": "blue", "le": "+Inf"}) == 4
    assert value("request_latency_seconds_count", {"deployment": "blue"}) == 4
    assert value("request_latency_seconds_count", {"deployment": ""}) is None
    assert value("requests_total", {"deployment": "", "status": "401"}) == 1
    assert value("mirror_requests_total", {"deployment": "green", "status": "500"}) == 1
    text = metrics.render().decode()
    assert 'requests_total{deployment="blue",status="200"} 4.0' in text
    # Another app in the same process starts from zero (own registry, not the global one).
    assert Metrics().registry.get_sample_value(bucket, {"deployment": "blue", "le": "+Inf"}) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"traffic": {"blue": 60, "green": 30}}, "traffic must sum to 100 over the deployments"),
        ({"traffic": {"blue": 100, "red": 0}}, "traffic names unknown deployment 'red'"),
        ({"traffic": {"blue": 100.0}}, "traffic.blue: Input should be a valid integer"),
        ({"traffic": {"blue": True}}, "traffic.blue: Input should be a valid integer"),
        ({"mirror_traffic": {"green": 101}}, "mirror_traffic.green: Input should be less than"),
        ({"keys": {"secondary": "abc"}}, "keys.primary is required"),
        ({"keys": {"primary": "has space"}}, "keys.primary: must be a non-empty string"),
        ({"keys": {"primary": "abc", "third": "x"}}, "keys.third: unknown key"),
        ({"trafic": {}}, "trafic: unknown key; expected one of ['body_timeout_s', 'deployments', "),
        ({"endpoint": "bad name!"}, "endpoint: must be a name matching"),
        ({"endpoint": 7}, "endpoint: Input should be a valid string"),
        ({"deployments": {}}, "deployments: Dictionary should have at least 1 item"),
        ({"deployments": {"blue": {"model_path": "m", "colour": 1}}}, "deployments.blue.colour"),
        ({"deployments": {"blue": {"model_path": ""}}}, "deployments.blue.model_path: String"),
        ({"deployments": {"b b": {"model_path": "m"}}}, "deployments name 'b b': must be a name"),
        ({"max_body_bytes": 0}, "max_body_bytes: Input should be greater than 0"),
        ({"inference_log_dir": None}, "inference_log_dir: Input should be a valid string"),
    ],
)
def test_settings_validation(
    tmp_path: Path, models: dict[str, Path], change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ServingSettings.from_dict(make_config(tmp_path, models, **change))


def test_settings_errors_name_every_bad_field(tmp_path: Path, models: dict[str, Path]) -> None:
    config = make_config(tmp_path, models, max_body_bytes=-1)
    del config["endpoint"]
    config["deployments"]["green"]["max_batch_rows"] = "8"
    with pytest.raises(ConfigError) as err:
        ServingSettings.from_dict(config)
    problems = str(err.value).split("; ")
    assert "endpoint is required" in problems
    assert "deployments.green.max_batch_rows: Input should be a valid integer" in problems
    assert "max_body_bytes: Input should be greater than 0" in problems
    with pytest.raises(ConfigError, match="the serving config must be a JSON object"):
        ServingSettings.from_dict(["not", "an", "object"])


def test_settings_file_resolves_relative_paths(tmp_path: Path, models: dict[str, Path]) -> None:
    config = make_config(tmp_path, models, inference_log_dir="logs")
    config["deployments"]["blue"]["model_path"] = "../" + models["blue"].parent.name + "/blue"
    path = tmp_path / "conf" / "serving.json"
    path.parent.mkdir()
    path.write_text(json.dumps(config))
    settings = ServingSettings.from_file(path)
    assert settings.inference_log_dir == str(path.parent / "logs")
    assert settings.source == str(path)
    assert ServingSettings.from_dict(settings.to_dict()) == settings


def test_log_reader_skips_only_a_torn_tail(tmp_path: Path) -> None:
    first = log_file(tmp_path, "2026-01-02", "ep", "host-1-1")
    first.parent.mkdir(parents=True)
    first.write_bytes(b'{"request_id": "a"}\n{"request_id": "b"}\n{"request_id": "c", "inp')
    second = log_file(tmp_path, "2026-01-03", "ep", "host-2-2")
    second.parent.mkdir(parents=True)
    second.write_bytes(b'{"request_id": "d"}\n')
    assert days(tmp_path) == ["2026-01-02", "2026-01-03"]
    assert [r["request_id"] for r in iter_records(tmp_path)] == ["a", "b", "d"]
    assert [r["request_id"] for r in iter_records(tmp_path, "2026-01-03")] == ["d"]
    first.write_bytes(b'{"request_id": "a"}\n{"broken\n{"request_id": "c"}\n')
    with pytest.raises(ValueError, match=":2 is not a JSON row"):
        list(iter_records(tmp_path))


def test_image_store_writes_each_content_once_and_leaves_no_temp_files(tmp_path):
    from serving.image_store import ImageStore

    synced: list[Path] = []
    store = ImageStore(tmp_path / "log" / "images", "proc-1", synced.append)
    blobs = {f"{i:064x}": bytes([i]) * (100 + i) for i in range(5)}
    assert store.store(blobs) == 5  # several new files: their data syncs run together
    assert store.store({**blobs, "f" * 64: b"new"}) == 1  # known contents are skipped
    again = ImageStore(tmp_path / "log" / "images", "proc-2", synced.append)
    assert again.store(blobs) == 0  # another process finds them on disk
    files = sorted(p.name for p in (tmp_path / "log" / "images").iterdir())
    assert files == sorted([*blobs, "f" * 64])  # no .tmp left behind
    assert all((tmp_path / "log" / "images" / n).read_bytes() == b for n, b in blobs.items())
    assert synced.count(tmp_path / "log" / "images") == 3  # the folder once per batch
    store.close()
    again.close()
