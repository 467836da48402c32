"""What one scoring server serves: deployments, traffic split, keys, log folder.

The control plane (the endpoint resource) writes this as a JSON file and points
the server at it with `--config` or the `MLOPS_SERVING_CONFIG` environment variable;
to change traffic, models or keys it rewrites the file and asks the server to
reload it (POST /-/reload or SIGHUP, see `serving.app`). Shape:

    {"endpoint": "classical-online",
     "deployments": {"blue": {"model_path": "...", "model_name": "...", "model_version": "2",
                              "registry": "prod", "source_version": "3"}},
     "traffic": {"blue": 100}, "mirror_traffic": {"green": 10},
     "keys": {"primary": "...", "secondary": "...", "replay": "..."},
     "inference_log_dir": "...", "max_body_bytes": 1048576,
     "header_timeout_s": 10.0, "body_timeout_s": 30.0, "max_drain_bytes": 16777216,
     "event_date_earliest": "2000-01-01", "event_date_max_days_ahead": 1}

Clients score with the primary or secondary key. The optional replay key is a second
credential a replaying client sends (`x-mlops-replay-key`) to file its traffic under a
business day (`x-mlops-event-date`, from `event_date_earliest` to today plus
`event_date_max_days_ahead`); it does not authorize scoring by itself.

`registry` (optional) says which registry `model_version` numbers belong to ("prod",
"dev"), `source_version` (optional) the dev version a prod version was promoted from;
both only label what is served (`serving.labels`).

Relative paths are relative to the config file. The pydantic models below validate
everything (strict types, unknown keys refused); `ConfigError` carries every problem,
each naming its field (`traffic.blue: ...`), so a bad file is refused before it
replaces a working configuration.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
    with_config,
)
from pydantic_core import ErrorDetails
from typing_extensions import TypedDict  # pydantic refuses typing.TypedDict before 3.12

CONFIG_ENV = "MLOPS_SERVING_CONFIG"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")  # Azure ML endpoint/deployment names
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII without spaces: it travels in a header
_LABEL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # registry names and versions
# Strict: a JSON 100.0 or true is not a percent, "3" and 3 are not the same version.
_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class ConfigError(ValueError):
    """The serving configuration is invalid; the message names the field."""


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"must be a name matching {_NAME.pattern}, got {value!r}")
    return value


def _key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError("must be a non-empty string of printable ASCII without spaces")
    return value


def _label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(f"must match {_LABEL.pattern}, got {value!r}")
    return value


def parse_date(value: str) -> date | None:
    """A calendar date written YYYY-MM-DD, or None for anything else."""
    if not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _date(value: str) -> str:
    if parse_date(value) is None:
        raise ValueError(f"must be a date YYYY-MM-DD, got {value!r}")
    return value


def _resolve(value: str, info: ValidationInfo) -> str:
    """Relative to the config file's folder (`base_dir` in the validation context)."""
    base = Path((info.context or {}).get("base_dir", "."))
    return str((base / value).resolve())


Name = Annotated[str, AfterValidator(_name)]
Key = Annotated[str, AfterValidator(_key)]
Label = Annotated[str, AfterValidator(_label)]
Percent = Annotated[int, Field(ge=0, le=100)]
LocalPath = Annotated[str, Field(min_length=1)]
IsoDate = Annotated[str, AfterValidator(_date)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


@with_config(_STRICT)
class Keys(TypedDict):
    """Either key is accepted, so clients can move to a new one before the old one goes.

    `replay` is no scoring key: it only lets a request set its event date.
    """

    primary: Key
    secondary: NotRequired[Key]
    replay: NotRequired[Key]


class DeploymentSettings(BaseModel):
    """One model behind the endpoint."""

    model_config = _STRICT

    model_path: LocalPath  # a local MLflow model directory (the folder holding MLmodel)
    model_name: str = ""
    model_version: str = ""
    registry: Label | None = None  # which registry model_version belongs to: "prod", "dev"
    source_version: Label | None = None  # the dev version a prod version was promoted from
    # Concurrent requests are scored in one model call of up to this many rows;
    # 1 turns cross-request batching off (for models whose output depends on the batch).
    max_batch_rows: Annotated[int, Field(ge=1)] = 2048

    @field_validator("model_path")
    @classmethod
    def absolute_model_path(cls, value: str, info: ValidationInfo) -> str:
        return _resolve(value, info)


class ServingSettings(BaseModel):
    """A validated serving configuration; build it with `from_file`, `from_dict` or `from_env`."""

    model_config = _STRICT

    endpoint: Name
    deployments: Annotated[dict[Name, DeploymentSettings], Field(min_length=1)]
    traffic: dict[str, Percent]
    keys: Keys
    inference_log_dir: LocalPath
    mirror_traffic: dict[str, Percent] = Field(default_factory=dict)
    max_body_bytes: Annotated[int, Field(gt=0)] = 1 << 20
    # A body over max_body_bytes is read and discarded up to this size before the 413,
    # so a client that sends its whole body before reading gets the answer, not a reset.
    max_drain_bytes: Annotated[int, Field(ge=0)] = 16 << 20
    # Slow clients: the headers of a request must arrive within header_timeout_s of its
    # first byte (or of the connection), its body within body_timeout_s of the headers.
    header_timeout_s: Seconds = 10.0
    body_timeout_s: Seconds = 30.0
    # x-mlops-event-date (with the replay key) must lie in [earliest, today + max_days_ahead].
    event_date_earliest: IsoDate = "2000-01-01"
    event_date_max_days_ahead: Annotated[int, Field(ge=0, le=366)] = 1
    # The file it came from (what a reload re-reads); not part of what is served.
    _source: str | None = PrivateAttr(default=None)

    @field_validator("inference_log_dir")
    @classmethod
    def absolute_log_dir(cls, value: str, info: ValidationInfo) -> str:
        return _resolve(value, info)

    @model_validator(mode="after")
    def splits_name_deployments(self) -> ServingSettings:
        for field, split in (("traffic", self.traffic), ("mirror_traffic", self.mirror_traffic)):
            for name in split:
                if name not in self.deployments:
                    raise ValueError(f"{field} names unknown deployment '{name}'")
        total = sum(self.traffic.values())
        if total != 100:
            raise ValueError(
                f"traffic must sum to 100 over the deployments, got {total} ({self.traffic})"
            )
        return self

    @property
    def source(self) -> str | None:
        return self._source

    def __eq__(self, other: object) -> bool:
        # Equal when they serve the same thing, wherever they were read from.
        if not isinstance(other, ServingSettings):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable dict fields: not hashable anyway

    @classmethod
    def from_dict(
        cls, data: Any, base_dir: str | Path = ".", source: str | None = None
    ) -> ServingSettings:
        try:
            settings = cls.model_validate(data, context={"base_dir": str(base_dir)})
        except ValidationError as exc:
            raise ConfigError("; ".join(map(_describe, exc.errors()))) from None
        settings._source = source
        return settings

    @classmethod
    def from_file(cls, path: str | Path) -> ServingSettings:
        file = Path(path).resolve()
        try:
            data = json.loads(file.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read serving config {file}: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"serving config {file} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, base_dir=file.parent, source=str(file))

    @classmethod
    def from_env(cls) -> ServingSettings:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise ConfigError(f"set {CONFIG_ENV} to the serving config file")
        return cls.from_file(path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape `from_dict` reads (paths absolute)."""
        return self.model_dump()


def _describe(error: ErrorDetails) -> str:
    """One validation error as `field.path: problem`."""
    loc = [str(part) for part in error["loc"]]
    if loc and loc[-1] == "[key]":  # a bad key of a mapping (a deployment name)
        where = f"{'.'.join(loc[:-2])} name {loc[-2]!r}"
    else:
        where = ".".join(loc)
    kind, message = error["type"], error["msg"].removeprefix("Value error, ")
    if not where:
        if kind == "model_type":
            return "the serving config must be a JSON object"
        return message  # a cross-field check: its message names the fields
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        known = sorted(ServingSettings.model_fields) if len(loc) == 1 else None
        return f"{where}: unknown key" + (f"; expected one of {known}" if known else "")
    return f"{where}: {message}"
