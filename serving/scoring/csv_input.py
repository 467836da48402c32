"""Read a `text/csv` scoring body (MLflow's `/invocations` CSV input) into a typed `Table`.

MLflow's server reads CSV with `pandas.read_csv` and the signature's dtypes: the header
row names the columns, every following row is one input. This does the same without
pandas (the server imports no pandas per request): the stdlib `csv` reader splits
fields, then each signature column is converted to the JSON-like values `InputSchema`
checks, so a CSV request passes exactly the checks a JSON one does.

Design constraints, following `pandas.read_csv` defaults as MLflow uses them:
- An empty field, or one of pandas' default missing-value markers (`NA`, `null`,
  `NaN`, ...), is a missing value in any column; a required column then refuses it.
- Numbers are converted strictly: `1.5` is a double, `1.5` is not a long, `1_000`
  is neither; `true`/`True`/`TRUE` and the `false` spellings are booleans.
- Blank lines are skipped; a row with more or fewer fields than the header is a 400
  naming it; the body must be UTF-8 (a leading byte-order mark is dropped).
- Columns the signature does not name stay text (the server ignores them).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from typing import Any

from serving.scoring.errors import InputError
from serving.scoring.parsing import Table
from serving.scoring.schema import InputSchema

# pandas.read_csv's default na_values (pandas/_libs/parsers.pyx STR_NA_VALUES).
MISSING = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
_BOOLEANS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False,
             "false": False}  # fmt: skip


def _bad(name: str, kind: str, row: int, text: str) -> InputError:
    shown = text if len(text) <= 40 else text[:40] + "..."
    return InputError("invalid_type", f"column '{name}' expects {kind}; row {row} has {shown!r}")


def _number(name: str, kind: str, text: str, row: int) -> float:
    if "_" not in text:
        try:
            return float(text)
        except ValueError:
            pass
    raise _bad(name, kind, row, text)


def _integer(name: str, kind: str, text: str, row: int) -> int:
    if _INTEGER.fullmatch(text):
        return int(text)
    raise _bad(name, kind, row, text)


def _boolean(name: str, kind: str, text: str, row: int) -> bool:
    if text in _BOOLEANS:
        return _BOOLEANS[text]
    raise _bad(name, kind, row, text)


_CONVERT: dict[str, Callable[[str, str, str, int], Any]] = {
    "double": _number,
    "float": _number,
    "long": _integer,
    "integer": _integer,
    "boolean": _boolean,
}


def _column(name: str, kind: str | None, texts: Sequence[str]) -> list[Any]:
    convert = _CONVERT.get(kind or "")
    if convert is None:  # string, binary (base64), datetime (ISO text), or not in the signature
        return [None if text in MISSING else text for text in texts]
    return [
        None if text in MISSING else convert(name, kind, text, row)
        for row, text in enumerate(texts)
    ]


def _rows(body: bytes) -> list[list[str]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError("malformed_csv", f"the CSV body is not UTF-8: {exc}") from None
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except csv.Error as exc:
        raise InputError("malformed_csv", f"the body is not valid CSV: {exc}") from None


def parse_csv(body: bytes, schema: InputSchema) -> Table:
    """A CSV body (header row, then one row per input) as a Table typed by `schema`."""
    rows = _rows(body)
    if not rows:
        raise InputError("empty_input", "the CSV body is empty; send a header row, then rows")
    columns, data = rows[0], rows[1:]
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise InputError("duplicate_column", f"the CSV header repeats {dupes}")
    if not data:
        raise InputError("empty_input", "the CSV body has a header row but no data rows")
    width = len(columns)
    for i, row in enumerate(data):
        if len(row) != width:
            raise InputError(
                "invalid_shape", f"CSV row {i} has {len(row)} fields for {width} columns"
            )
    kinds = {spec.name: spec.type for spec in schema.columns}
    texts = list(zip(*data, strict=True))
    values = [_column(n, kinds.get(n), col) for n, col in zip(columns, texts, strict=True)]
    return Table(columns, values, len(data))
