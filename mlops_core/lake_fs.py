"""The lake as seen from a worker process: a root URI plus fsspec storage options.

Batch workers run outside Dagster (spawned processes; later an Azure ML batch
job), so they cannot use the `DataLake` resource. `FsLake` gives them the same
lake-relative paths and read/write methods over what the resource exports
(`lake.uri(...)` and `lake.storage_options()`): a local folder is read and
written directly, anything else (`abfs://container/prefix`) through fsspec.

Writes are atomic per object, as the resource's are: locally a temporary file
in the same folder is fsynced and renamed over the target; on Blob storage a
single upload commits the whole object or nothing.
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd
    import pyarrow as pa


def clean_path(path: str) -> str:
    """Normalise a lake-relative path; refuse absolute paths and `..` segments."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if path.startswith("/") or not parts or ".." in parts:
        raise ValueError(f"lake path must be relative and inside the lake, got {path!r}")
    return "/".join(parts)


# Storage options that may be written into an Azure ML job definition or an uploaded
# manifest: they name the account and leave authentication to the compute's identity.
# Anything else (connection_string, account_key, sas_token, credential, ...) may be a secret.
SHAREABLE_OPTIONS = frozenset({"account_name", "account_host", "anon"})


def secret_option_keys(options: Mapping[str, Any]) -> list[str]:
    """The keys of `options` that must not be stored where others can read them."""
    return sorted(k for k in options if k not in SHAREABLE_OPTIONS)


def shareable_storage_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`options`, if safe to store in `where` (e.g. "the Azure ML job definition"); else
    `ValueError` naming the keys, since the job definition outlives the run."""
    secret = secret_option_keys(options)
    if secret:
        raise ValueError(
            f"lake storage options {secret} may hold secrets and would be stored in {where}; "
            f"only {sorted(SHAREABLE_OPTIONS)} may be: use an identity-based lake "
            "(account_url) whose compute identity can read it"
        )
    return dict(options)


@functools.cache
def _filesystem(protocol: str, options: str) -> Any:
    import fsspec

    return fsspec.filesystem(protocol, **json.loads(options))


@dataclass(frozen=True)
class FsLake:
    """Lake-relative paths under `root` (a local folder or an fsspec URI prefix)."""

    root: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return "://" in self.root and not self.root.startswith("file://")

    def uri(self, path: str) -> str:
        return f"{self.root.removeprefix('file://').rstrip('/')}/{clean_path(path)}"

    def _fs(self) -> Any:
        options = json.dumps(dict(self.storage_options), sort_keys=True)
        return _filesystem(self.root.split("://", 1)[0], options)

    def read_bytes(self, path: str) -> bytes:
        target = self.uri(path)
        try:
            if self.remote:
                return self._fs().cat_file(target)
            return Path(target).read_bytes()
        except FileNotFoundError as err:
            raise FileNotFoundError(f"lake object not found: {clean_path(path)}") from err

    def exists(self, path: str) -> bool:
        target = self.uri(path)
        return self._fs().isfile(target) if self.remote else Path(target).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.uri(prefix)
        root = self.root.removeprefix("file://").rstrip("/")
        if self.remote:
            fs = self._fs()
            found = fs.find(base) if fs.isdir(base) else []
            strip = len(root.split("://", 1)[1]) + 1  # fsspec lists paths without the scheme
            return sorted(p[strip:] for p in found)
        folder = Path(base)
        if not folder.is_dir():
            return []
        return sorted(
            p.relative_to(root).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, path: str) -> None:
        target = self.uri(path)
        if self.remote:
            if self._fs().isfile(target):
                self._fs().rm_file(target)
        else:
            Path(target).unlink(missing_ok=True)

    def write_bytes(self, path: str, data: bytes, temp_suffix: str = "tmp") -> None:
        """Write atomically; locally through `.<name>.<temp_suffix>` next to the target."""
        if self.remote:
            self._fs().pipe_file(self.uri(path), data)
        else:
            self._write_local(path, temp_suffix, lambda fh: fh.write(data))

    def _write_local(self, path: str, temp_suffix: str, write: Callable[[BinaryIO], Any]) -> None:
        final = Path(self.uri(path))
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{temp_suffix}")
        try:
            with open(temp, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def temp_path(self, path: str, temp_suffix: str) -> str:
        """The lake path `write_bytes(path, ..., temp_suffix)` stages through (local lakes)."""
        folder, _, name = clean_path(path).rpartition("/")
        return f"{folder}/.{name}.{temp_suffix}" if folder else f".{name}.{temp_suffix}"

    def read_table(self, path: str) -> pa.Table:
        import pyarrow.parquet as pq

        if self.remote:
            return pq.read_table(io.BytesIO(self.read_bytes(path)))
        target = self.uri(path)
        if not Path(target).is_file():
            raise FileNotFoundError(f"lake object not found: {clean_path(path)}")
        return pq.read_table(target)

    def write_table(self, path: str, table: pa.Table, temp_suffix: str = "tmp") -> None:
        """Write a parquet file atomically, straight from Arrow (no pandas round trip)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.remote:
            self._write_local(path, temp_suffix, lambda fh: pq.write_table(table, fh))
            return
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf)
        self.write_bytes(path, buf.getvalue().to_pybytes())

    def read_parquet(self, path: str) -> pd.DataFrame:
        return self.read_table(path).to_pandas()

    def write_parquet(self, path: str, df: pd.DataFrame) -> None:
        import pyarrow as pa

        self.write_table(path, pa.Table.from_pandas(df, preserve_index=False))

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))

    def write_json(self, path: str, obj: Any) -> None:
        self.write_bytes(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())
