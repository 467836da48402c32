"""Turn a decoded JSON scoring payload into a `Table` of columns.

Supported shapes, exactly those Azure ML managed endpoints and `mlflow models serve`
accept for a tabular MLflow model:

- Azure ML `/score`: `{"input_data": {"columns": [...], "index": [...], "data": [[...]]}}`
  (also `input_data` as a list of records or an object of columns), optional `params`.
- MLflow `/invocations`: exactly one of `dataframe_split`, `dataframe_records`,
  `instances`, `inputs`, optional `params` (kept on the `Table`; `serving.inputs` reads
  `output` from it). CSV bodies are read by `csv_input.py`.

Design constraints: this runs once per request on the event loop, so it only
reshapes (`zip(*rows)` is a C loop) and checks structure; it never builds pandas
objects or checks value types (that is `schema.py`'s job). Every structural problem
is an `InputError` whose message names the key, row or column at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serving.scoring.errors import InputError

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


@dataclass(slots=True)
class Table:
    """Columns of one request, in the order the client sent them."""

    columns: list[str]
    values: list[Sequence[Any]]  # one sequence per column, aligned with `columns`
    nrows: int
    rows: list[Any] | None = None  # the payload's own rows when it was row-wise (split)
    params: dict[str, Any] | None = None  # the payload's `params` object, if any

    def log_rows(self) -> list[Any]:
        """Rows in `columns` order, for the inference log (no copy for split input)."""
        return self.rows if self.rows is not None else list(zip(*self.values, strict=True))

    def drop(self, names: Sequence[str]) -> Table:
        """This table without the columns `names`."""
        gone = set(names)
        kept = [i for i, name in enumerate(self.columns) if name not in gone]
        columns = [self.columns[i] for i in kept]
        return Table(columns, [self.values[i] for i in kept], self.nrows, params=self.params)


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    names = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        list: "array",
        dict: "object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _a(value: Any) -> str:
    name = json_type(value)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _column_names(columns: Any, where: str) -> list[str]:
    if type(columns) is not list or not columns:
        raise InputError("invalid_shape", f"{where}.columns must be a non-empty array of names")
    for name in columns:
        if type(name) is not str:
            raise InputError(
                "invalid_shape", f"{where}.columns holds {_a(name)}, not a column name"
            )
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise InputError("duplicate_column", f"{where}.columns repeats {dupes}")
    return columns


def from_split(obj: Any, where: str) -> Table:
    """pandas 'split' orientation: columns, data (list of rows) and an optional index."""
    if type(obj) is not dict:
        raise InputError("invalid_shape", f"{where} must be an object with 'columns' and 'data'")
    unknown = obj.keys() - {"columns", "data", "index"}
    if unknown:
        raise InputError("invalid_shape", f"{where} has unknown keys {sorted(unknown)}")
    if "data" not in obj:
        raise InputError("invalid_shape", f"{where} needs a 'data' array of rows")
    columns = _column_names(obj.get("columns"), where)
    data = obj["data"]
    if type(data) is not list or not data:
        raise InputError(
            "empty_input" if data == [] else "invalid_shape",
            f"{where}.data must be a non-empty array of rows",
        )
    width = len(columns)
    if not all(type(row) is list and len(row) == width for row in data):
        for i, row in enumerate(data):
            if type(row) is not list:
                raise InputError(
                    "invalid_shape", f"{where}.data[{i}] is {_a(row)}, not an array of values"
                )
            if len(row) != width:
                raise InputError(
                    "invalid_shape", f"{where}.data[{i}] has {len(row)} values for {width} columns"
                )
    index = obj.get("index")
    if index is not None and (type(index) is not list or len(index) != len(data)):
        raise InputError("invalid_shape", f"{where}.index must be an array with one entry per row")
    return Table(columns, list(zip(*data, strict=True)), len(data), rows=data)


def from_records(records: Any, where: str) -> Table:
    """A list of {column: value} objects; a key absent from a record reads as null."""
    if type(records) is not list or not records:
        raise InputError(
            "empty_input" if records == [] else "invalid_shape",
            f"{where} must be a non-empty array of records",
        )
    for i, record in enumerate(records):
        if type(record) is not dict:
            raise InputError("invalid_shape", f"{where}[{i}] is {_a(record)}, not a record object")
    keys = records[0].keys()
    if all(r.keys() == keys for r in records):
        columns = list(keys)
    else:  # ragged records: union of keys in first-seen order
        columns = list(dict.fromkeys(k for r in records for k in r))
    values = [[r.get(c) for r in records] for c in columns]
    return Table(columns, values, len(records))


def from_columns(obj: Any, where: str) -> Table:
    """An object of {column: [values]} (or {column: value} for a single row)."""
    if type(obj) is not dict or not obj:
        raise InputError("invalid_shape", f"{where} must be a non-empty object of columns")
    columns = list(obj)
    values = list(obj.values())
    lists = [type(v) is list for v in values]
    if not any(lists):  # every column is a scalar: one row
        return Table(columns, [[v] for v in values], 1)
    if not all(lists):
        scalar = columns[lists.index(False)]
        raise InputError(
            "invalid_shape", f"{where}['{scalar}'] is a scalar while other columns are arrays"
        )
    nrows = len(values[0])
    for name, column in zip(columns, values, strict=True):
        if len(column) != nrows:
            raise InputError(
                "invalid_shape",
                f"{where}['{name}'] has {len(column)} values, '{columns[0]}' has {nrows}",
            )
    if nrows == 0:
        raise InputError("empty_input", f"{where} has no rows")
    return Table(columns, values, nrows)


def _records_or_columns(obj: Any, where: str) -> Table:
    if type(obj) is list:
        if obj and type(obj[0]) is not dict:
            raise InputError(
                "invalid_shape",
                f"{where} as an array must hold record objects; "
                "send rows with 'columns' names instead",
            )
        return from_records(obj, where)
    return from_columns(obj, where)


def _params(payload: dict[str, Any]) -> dict[str, Any] | None:
    params = payload.get("params")
    if params is not None and type(params) is not dict:
        raise InputError("invalid_shape", "params must be an object")
    return params


def parse_azureml(payload: Any) -> Table:
    """Azure ML managed online endpoint request for an MLflow model (`POST /score`)."""
    if type(payload) is not dict or "input_data" not in payload:
        raise InputError("invalid_shape", "the body must be a JSON object with an 'input_data' key")
    unknown = payload.keys() - {"input_data", "params"}
    if unknown:
        raise InputError(
            "invalid_shape",
            f"unknown top-level keys {sorted(unknown)}; "
            "expected 'input_data' and optional 'params'",
        )
    params = _params(payload)
    data = payload["input_data"]
    if type(data) is dict and ("data" in data or "columns" in data):
        table = from_split(data, "input_data")
    else:
        table = _records_or_columns(data, "input_data")
    table.params = params
    return table


def parse_mlflow(payload: Any) -> Table:
    """`mlflow models serve` request (`POST /invocations`, application/json)."""
    if type(payload) is not dict:
        raise InputError(
            "invalid_shape",
            f"the body must be a JSON object with exactly one of {list(MLFLOW_FORMATS)}",
        )
    found = [k for k in MLFLOW_FORMATS if k in payload]
    unknown = payload.keys() - {*MLFLOW_FORMATS, "params"}
    if len(found) != 1 or unknown:
        raise InputError(
            "invalid_shape",
            "the body must be a JSON object with exactly one of "
            f"{list(MLFLOW_FORMATS)} (and optional 'params'); "
            f"got keys {sorted(payload)}",
        )
    params = _params(payload)
    fmt = found[0]
    if fmt == "dataframe_split":
        table = from_split(payload[fmt], fmt)
    elif fmt == "dataframe_records":
        table = from_records(payload[fmt], fmt)
    else:
        table = _records_or_columns(payload[fmt], fmt)
    table.params = params
    return table
