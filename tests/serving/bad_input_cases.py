"""Bad request bodies and headers for `test_serving_bad_input.py`, one case per client mistake.

Each case is (id, path, body, headers, status, error code, text the message must contain), for
the default serving config of `conftest.make_config` (blue 100%, 64 KiB body limit, the COLUMNS
signature). Data only: no fixtures, no server.
"""

from __future__ import annotations

import json

from tests.serving.conftest import AUTH, COLUMNS

JSON = {**AUTH, "content-type": "application/json"}


def split(data: list[list[object]], columns: list[str] = COLUMNS) -> bytes:
    return json.dumps({"input_data": {"columns": columns, "data": data}}).encode()


ROW = [1.5, 500, "AA", 3.0]
CASES = [
    # (id, path, body, headers, status, code, text the message must contain)
    (
        "truncated-json",
        "/score",
        b'{"input_data": {"columns": [',
        JSON,
        400,
        "malformed_json",
        "not valid JSON",
    ),
    ("empty-body", "/score", b"", JSON, 400, "malformed_json", "empty"),
    ("not-utf8", "/score", b'{"input_data": "\xff\xfe"}', JSON, 400, "malformed_json", "JSON"),
    ("top-level-list", "/score", b"[1, 2]", JSON, 400, "invalid_shape", "input_data"),
    ("no-input-data", "/score", b'{"data": [[1]]}', JSON, 400, "invalid_shape", "input_data"),
    (
        "extra-top-key",
        "/score",
        b'{"input_data": {"columns": ["a"], "data": [[1]]}, "x": 1}',
        JSON,
        400,
        "invalid_shape",
        "['x']",
    ),
    (
        "two-mlflow-formats",
        "/invocations",
        b'{"dataframe_split": {}, "inputs": {}}',
        JSON,
        400,
        "invalid_shape",
        "exactly one",
    ),
    (
        "old-mlflow-1-shape",
        "/invocations",
        split([ROW])[len(b'{"input_data": ') : -1],
        JSON,
        400,
        "invalid_shape",
        "dataframe_split",
    ),
    (
        "ragged-row",
        "/score",
        split([ROW, ROW[:3]]),
        JSON,
        400,
        "invalid_shape",
        "input_data.data[1] has 3 values for 4 columns",
    ),
    ("row-not-array", "/score", split([ROW, "x"]), JSON, 400, "invalid_shape", "data[1]"),
    ("no-rows", "/score", split([]), JSON, 400, "empty_input", "non-empty"),
    (
        "duplicate-column",
        "/score",
        split([ROW], ["dep_delay", "dep_delay", "carrier", "wind_speed"]),
        JSON,
        400,
        "duplicate_column",
        "dep_delay",
    ),
    (
        "missing-column",
        "/score",
        split([[1.5, "AA"]], ["dep_delay", "carrier"]),
        JSON,
        400,
        "missing_column",
        "'distance'",
    ),
    (
        "extra-column",
        "/score",
        split([[*ROW, 9]], [*COLUMNS, "altitude"]),
        JSON,
        400,
        "unexpected_column",
        "'altitude'",
    ),
    (
        "string-for-double",
        "/score",
        split([ROW, ["late", 500, "AA", 3.0]]),
        JSON,
        400,
        "invalid_type",
        "column 'dep_delay' expects double; row 1 has string",
    ),
    (
        "bool-for-long",
        "/score",
        split([[1.5, True, "AA", 3.0]]),
        JSON,
        400,
        "invalid_type",
        "column 'distance' expects long; row 0 has boolean",
    ),
    (
        "float-for-long",
        "/score",
        split([[1.5, 500.5, "AA", 3.0]]),
        JSON,
        400,
        "invalid_type",
        "'distance'",
    ),
    (
        "number-for-string",
        "/score",
        split([[1.5, 500, 7, 3.0]]),
        JSON,
        400,
        "invalid_type",
        "column 'carrier' expects string; row 0 has integer 7",
    ),
    (
        "array-in-cell",
        "/score",
        split([[[1.5], 500, "AA", 3.0]]),
        JSON,
        400,
        "invalid_type",
        "'dep_delay'",
    ),
    (
        "null-in-required",
        "/score",
        split([ROW, [None, 500, "AA", 3.0]]),
        JSON,
        400,
        "null_value",
        "column 'dep_delay' is required; row 1 is null",
    ),
    (
        "nan-in-required",
        "/score",
        b'{"input_data": {"columns": ["dep_delay", "distance", "carrier"], '
        b'"data": [[NaN, 500, "AA"]]}}',
        JSON,
        400,
        "non_finite_value",
        "'dep_delay'",
    ),
    (
        "inf-in-optional",
        "/score",
        b'{"input_data": {"columns": ["dep_delay", "distance", "carrier", "wind_speed"], '
        b'"data": [[1.5, 500, "AA", Infinity]]}}',
        JSON,
        400,
        "non_finite_value",
        "'wind_speed'",
    ),
    (
        "long-overflow",
        "/score",
        split([[1.5, 2**63, "AA", 3.0]]),
        JSON,
        400,
        "out_of_range",
        "'distance'",
    ),
    (
        "records-not-objects",
        "/invocations",
        b'{"dataframe_records": [[1, 2]]}',
        JSON,
        400,
        "invalid_shape",
        "dataframe_records[0]",
    ),
    (
        "params-not-object",
        "/invocations",
        b'{"dataframe_split": {"columns": ["a"], "data": [[1]]}, "params": [1]}',
        JSON,
        400,
        "invalid_shape",
        "params",
    ),
    (
        "inputs-unequal-columns",
        "/invocations",
        b'{"inputs": {"dep_delay": [1.5, 2.5], "distance": [500]}}',
        JSON,
        400,
        "invalid_shape",
        "'distance'",
    ),
    (
        "text-plain",
        "/score",
        split([ROW]),
        {**AUTH, "content-type": "text/plain"},
        415,
        "unsupported_media_type",
        "application/json",
    ),
    (
        "form-encoded",
        "/invocations",
        b"a=1",
        {**AUTH, "content-type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
        "x-www-form-urlencoded",
    ),
    (
        "latin1-charset",
        "/score",
        split([ROW]),
        {**AUTH, "content-type": "application/json; charset=latin-1"},
        415,
        "unsupported_media_type",
        "latin-1",
    ),
    ("too-large", "/score", split([ROW] * 3000), JSON, 413, "payload_too_large", "65536"),
    (
        "request-id-too-long",
        "/score",
        split([ROW]),
        {**JSON, "x-request-id": "r" * 200},
        400,
        "invalid_request_id",
        "x-request-id",
    ),
]
