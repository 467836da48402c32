"""CSV bodies and output choices that are client mistakes, for `test_serving_bad_input.py`.

Same tuple layout as `bad_input_cases.CASES`: (id, path, body, headers, status, error code,
text the message must contain), for the default serving config of `conftest.make_config`.
Data only: no fixtures, no server.
"""

from __future__ import annotations

import json

from tests.serving.bad_input_cases import JSON, ROW, split
from tests.serving.conftest import AUTH, COLUMNS

CSV = {**AUTH, "content-type": "text/csv"}
HEADER = ",".join(COLUMNS)


def csv(*lines: str) -> bytes:
    return "\n".join(lines).encode()


def mlflow(params: object) -> bytes:
    return json.dumps(
        {"dataframe_split": {"columns": COLUMNS, "data": [ROW]}, "params": params}
    ).encode()


CSV_CASES = [
    ("csv-to-score", "/score", csv(HEADER, "1.5,500,AA,3.0"), CSV, 415,
     "unsupported_media_type", "'application/json'"),
    ("csv-latin1", "/invocations", csv(HEADER, "1.5,500,AA,3.0"),
     {**AUTH, "content-type": "text/csv; charset=latin-1"}, 415, "unsupported_media_type",
     "latin-1"),
    ("csv-parquet", "/invocations", b"PAR1",
     {**AUTH, "content-type": "application/vnd.apache.parquet"}, 415, "unsupported_media_type",
     "'text/csv'"),
    ("csv-empty", "/invocations", b"", CSV, 400, "empty_input", "empty"),
    ("csv-header-only", "/invocations", csv(HEADER), CSV, 400, "empty_input", "no data rows"),
    ("csv-ragged", "/invocations", csv(HEADER, "1.5,500,AA,3.0", "2.5,AA"), CSV, 400,
     "invalid_shape", "CSV row 1 has 2 fields for 4 columns"),
    ("csv-text-for-double", "/invocations", csv(HEADER, "late,500,AA,3.0"), CSV, 400,
     "invalid_type", "column 'dep_delay' expects double; row 0 has 'late'"),
    ("csv-fraction-for-long", "/invocations", csv(HEADER, "1.5,500.5,AA,3.0"), CSV, 400,
     "invalid_type", "column 'distance' expects long; row 0 has '500.5'"),
    ("csv-underscore-number", "/invocations", csv(HEADER, "1.5,1_000,AA,3.0"), CSV, 400,
     "invalid_type", "'1_000'"),
    ("csv-required-missing", "/invocations", csv(HEADER, ",500,AA,3.0"), CSV, 400,
     "null_value", "column 'dep_delay' is required; row 0 is null"),
    ("csv-duplicate-header", "/invocations", csv(HEADER + ",carrier", "1.5,500,AA,3.0,DL"), CSV,
     400, "duplicate_column", "['carrier']"),
    ("csv-not-utf8", "/invocations", HEADER.encode() + b"\n1.5,500,\xff,3.0", CSV, 400,
     "malformed_csv", "not UTF-8"),
    ("csv-open-quote", "/invocations", csv(HEADER, '1.5,500,"AA,3.0'), CSV, 400,
     "malformed_csv", "not valid CSV"),
    ("output-unknown", "/invocations", mlflow({"output": "labels"}), JSON, 400,
     "invalid_param", "output must be one of ['predictions', 'probabilities']"),
    ("output-conflict", "/invocations?output=predictions", mlflow({"output": "probabilities"}),
     JSON, 400, "invalid_param", "send one"),
    ("output-not-text", "/score", split([ROW])[:-1] + b', "params": {"output": 1}}', JSON, 400,
     "invalid_param", "got 1"),
]  # fmt: skip
