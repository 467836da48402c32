"""Bodies that once made the scoring server answer 500, for `test_serving_bad_input.py`.

Each is valid JSON for Python's parser (which the server uses only for bodies holding NaN
or Infinity, as MLflow's client writes them) but not for orjson, or it nests deep enough to
break recursive code: nested 20 000 deep, an integer beyond 64 bits, a lone UTF-16
surrogate. Every one must be a 4xx JSON error naming the problem, on /score (Azure ML
shape) and /invocations (MLflow shapes). Same tuple layout as `bad_input_cases.CASES`.
"""

from __future__ import annotations

from tests.serving.bad_input_cases import JSON

_COLUMNS = b'["dep_delay", "distance", "carrier", "wind_speed"]'
_DEEP = b"[" * 20_000 + b"]" * 20_000  # 40 KB: under the 64 KiB body limit


def _split(row: bytes, columns: bytes = _COLUMNS, extra: bytes = b"") -> bytes:
    return b'{"columns": ' + columns + b', "index": [0], "data": [' + row + b"]" + extra + b"}"


def _both(name: str, inner: bytes, code: str, text: str) -> list[tuple]:
    """One case per route: Azure ML `input_data` and MLflow `dataframe_split`."""
    return [
        (f"{name}-score", "/score", b'{"input_data": ' + inner + b"}", JSON, 400, code, text),
        (
            f"{name}-invocations",
            "/invocations",
            b'{"dataframe_split": ' + inner + b"}",
            JSON,
            400,
            code,
            text,
        ),
    ]


HOSTILE_CASES = [
    *_both(
        "deep-nesting-with-nan",
        _split(b'[1.5, 500, "AA", NaN]', extra=b', "x": ' + _DEEP),
        "malformed_json",
        "nested too deeply",
    ),
    *_both(
        "deep-nesting-in-a-cell",  # orjson's own depth limit is 1024: a cell 1000 deep parses
        _split(b"[" + b"[" * 1000 + b"]" * 1000 + b', 500, "AA", 1.0]'),
        "invalid_type",
        "column 'dep_delay' expects double; row 0 has array",
    ),
    *_both(
        "int-beyond-64-bits-with-nan",
        _split(b'[100000000000000000000000, 500, "AA", NaN]'),
        "malformed_json",
        "integer beyond the 64-bit range",
    ),
    *_both(
        "lone-surrogate-with-nan",
        _split(b'[1.5, 500, "\\ud800", NaN]'),
        "malformed_json",
        "surrogate",
    ),
    *_both(
        "lone-surrogate-column-with-nan",
        _split(b'[1.5, 500, "AA", NaN]', b'["dep_delay", "distance", "carrier", "\\udfff"]'),
        "malformed_json",
        "surrogate",
    ),
    (
        "records-lone-surrogate-key-with-nan",
        "/invocations",
        b'{"dataframe_records": [{"dep_delay": NaN, "\\ud800": 1}]}',
        JSON,
        400,
        "malformed_json",
        "surrogate",
    ),
    (
        "inputs-int-beyond-64-bits-with-infinity",
        "/invocations",
        b'{"inputs": {"dep_delay": [-Infinity, 1], "distance": [-99999999999999999999, 2]}}',
        JSON,
        400,
        "malformed_json",
        "64-bit",
    ),
]
