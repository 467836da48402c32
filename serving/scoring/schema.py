"""An MLflow column signature, and strict conversion of request columns to numpy arrays.

`InputSchema.from_signature_json` reads the `signature.inputs` string that MLflow
writes into the MLmodel file. `InputSchema.to_arrays` checks one request's `Table`
against it and returns one numpy array per signature column, in signature order
(sklearn checks feature names *and* their order).

Design constraints:
- Hot path: one `set(map(type, values))` per column (C speed) decides the common
  case; slow loops run only to word an error message.
- Stricter than pandas on purpose: a client mistake must become a 400 here, not a
  model exception (500) later. No silent casts: "1.5" is not a double, true is not 1.
- Missing values: a column with `required: false` accepts null (NaN, None or NaT)
  and may be omitted; a required column rejects null and NaN. Infinity is never
  accepted: no tabular model treats it as data.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.scoring.errors import InputError
from serving.scoring.parsing import Table, json_type

_NONE = type(None)
_NUMBER = frozenset({float, int})
_NUMBER_OR_NULL = _NUMBER | {_NONE}
_SCALARS = frozenset({str, int, float, bool})


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One named column of an MLflow signature."""

    name: str
    type: str  # an MLflow DataType name: double, float, long, integer, boolean, string, ...
    required: bool = True

    def describe(self) -> str:
        return self.type if self.required else f"{self.type} or null"


def _type_error(spec: ColumnSpec, values: Sequence[Any], allowed: frozenset[type]) -> InputError:
    row = next(i for i, v in enumerate(values) if type(v) not in allowed)
    value = values[row]
    if value is None:
        return InputError("null_value", f"column '{spec.name}' is required; row {row} is null")
    # Only scalars are quoted (an array may be nested 1000 deep); ASCII-escaped, cut short.
    shown = json.dumps(value)[:40] if type(value) in _SCALARS else f"of length {len(value)}"
    return InputError(
        "invalid_type",
        f"column '{spec.name}' expects {spec.describe()}; row {row} has {json_type(value)} {shown}",
    )


def _floats(spec: ColumnSpec, values: Sequence[Any], dtype: type[np.floating]) -> np.ndarray:
    kinds = set(map(type, values))
    if not kinds <= _NUMBER:
        if spec.required or not kinds <= _NUMBER_OR_NULL:
            raise _type_error(spec, values, _NUMBER if spec.required else _NUMBER_OR_NULL)
        values = [math.nan if v is None else v for v in values]
    try:
        with np.errstate(over="ignore"):
            array = np.asarray(values, dtype=dtype)
    except OverflowError:  # an integer beyond float range (only the stdlib parser yields one)
        raise InputError(
            "out_of_range", f"column '{spec.name}' has a value beyond {spec.type} range"
        ) from None
    if not np.isfinite(array).all():
        infinite = np.isinf(array)
        if infinite.any():
            row = int(np.argmax(infinite))
            raise InputError(
                "non_finite_value",
                f"column '{spec.name}' row {row} is infinite or beyond {spec.type} range",
            )
        if spec.required:
            row = int(np.argmax(np.isnan(array)))
            raise InputError(
                "non_finite_value", f"column '{spec.name}' is required; row {row} is NaN"
            )
    return array


def _double(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    return _floats(spec, values, np.float64)


def _float(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    return _floats(spec, values, np.float32)


def _integers(spec: ColumnSpec, values: Sequence[Any], dtype: type[np.integer]) -> np.ndarray:
    kinds = set(map(type, values))
    if kinds <= {int}:
        try:
            return np.asarray(values, dtype=dtype)
        except OverflowError:
            info = np.iinfo(dtype)
            raise InputError(
                "out_of_range",
                f"column '{spec.name}' holds a value outside [{info.min}, {info.max}]",
            ) from None
    if not spec.required and kinds <= {int, _NONE}:
        # Like pandas and MLflow: an integer column with missing values becomes float.
        return np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    raise _type_error(spec, values, frozenset({int} if spec.required else {int, _NONE}))


def _long(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    return _integers(spec, values, np.int64)


def _integer(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    return _integers(spec, values, np.int32)


def _objects(spec: ColumnSpec, values: Sequence[Any], kind: type) -> np.ndarray:
    allowed = frozenset({kind} if spec.required else {kind, _NONE})
    if not set(map(type, values)) <= allowed:
        raise _type_error(spec, values, allowed)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _string(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    return _objects(spec, values, str)


def _boolean(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    if spec.required and set(map(type, values)) <= {bool}:
        return np.asarray(values, dtype=bool)
    return _objects(spec, values, bool)


def _base64(value: str) -> bytes:
    """Strict base64 (raises ValueError: binascii.Error, or text that is not ASCII)."""
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        if "\n" not in value:
            raise
    # MLflow's own client (`dump_input_data`) writes MIME base64: lines of 76, "\n" ends.
    return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)


def _binary(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    array = _objects(spec, values, str)  # JSON carries bytes as base64 text, as in MLflow
    for row, value in enumerate(values):
        if value is not None:
            try:
                array[row] = _base64(value)
            except ValueError:  # binascii.Error, or text that is not ASCII
                raise InputError(
                    "invalid_type", f"column '{spec.name}' row {row} is not base64"
                ) from None
    return array


def _datetime(spec: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    _objects(spec, values, str)
    try:
        return np.asarray(values, dtype="datetime64[ns]")
    except ValueError as exc:
        raise InputError(
            "invalid_type", f"column '{spec.name}' expects ISO 8601 datetimes: {exc}"
        ) from None


_CONVERTERS: dict[str, Callable[[ColumnSpec, Sequence[Any]], np.ndarray]] = {
    "double": _double,
    "float": _float,
    "long": _long,
    "integer": _integer,
    "boolean": _boolean,
    "string": _string,
    "binary": _binary,
    "datetime": _datetime,
}


def _missing_column(spec: ColumnSpec, nrows: int) -> np.ndarray:
    if spec.type in ("double", "float", "long", "integer"):
        return np.full(nrows, np.nan)
    if spec.type == "datetime":
        return np.full(nrows, np.datetime64("NaT"), dtype="datetime64[ns]")
    return np.full(nrows, None, dtype=object)


class InputSchema:
    """The named columns a model takes, in signature order."""

    def __init__(self, columns: Sequence[ColumnSpec]) -> None:
        self.columns = tuple(columns)
        self.names = tuple(c.name for c in self.columns)
        self._name_set = frozenset(self.names)
        self._required = frozenset(c.name for c in self.columns if c.required)
        self._converters = tuple(_CONVERTERS[c.type] for c in self.columns)

    @classmethod
    def from_signature_json(cls, text: str) -> InputSchema:
        """Parse MLflow's `signature.inputs` JSON; reject what tabular serving can't check."""
        columns = []
        for entry in json.loads(text):
            if "name" not in entry or entry.get("type") not in _CONVERTERS:
                raise ValueError(
                    f"unsupported signature input {entry}: the scoring server "
                    f"serves named columns of types {sorted(_CONVERTERS)}"
                )
            columns.append(ColumnSpec(entry["name"], entry["type"], entry.get("required", True)))
        if not columns:
            raise ValueError("the signature has no input columns")
        return cls(columns)

    def to_dict(self) -> list[dict[str, Any]]:
        return [{"name": c.name, "type": c.type, "required": c.required} for c in self.columns]

    def to_arrays(self, table: Table) -> dict[str, np.ndarray]:
        """Check `table` against the schema; one array per signature column, in order."""
        given = table.columns
        if len(given) != len(self.names) or not self._name_set.issuperset(given):
            self._check_names(given)
        position = {name: i for i, name in enumerate(given)}
        arrays = {}
        for spec, convert in zip(self.columns, self._converters, strict=True):
            i = position.get(spec.name)
            if i is None:
                arrays[spec.name] = _missing_column(spec, table.nrows)
            else:
                arrays[spec.name] = convert(spec, table.values[i])
        return arrays

    def unknown(self, table: Table) -> list[str]:
        """The table's columns the signature does not name (MLflow ignores them)."""
        given = table.columns
        if len(given) <= len(self.names) and self._name_set.issuperset(given):
            return []
        return [c for c in given if c not in self._name_set]

    def _check_names(self, given: Sequence[str]) -> None:
        extra = [c for c in given if c not in self._name_set]
        if extra:
            raise InputError(
                "unexpected_column",
                f"unexpected column(s) {extra}; the model takes {list(self.names)}",
            )
        missing = [c for c in self.names if c in self._required and c not in given]
        if missing:
            raise InputError(
                "missing_column",
                f"missing required column(s) {missing}; the model takes {list(self.names)}",
            )
