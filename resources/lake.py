"""The data lake: parquet, JSON and raw files addressed by lake-relative paths.

`LocalLake` (a folder, the embedded default) and `AzureBlobLake` (Azure Blob
Storage / ADLS Gen2 through the Blob API, so it also runs against Azurite)
honour one contract, tested against both. Writes are atomic per object: a
reader never sees half a file and a failed write leaves the old object intact.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd


class LakePathError(ValueError):
    """A lake path that is absolute or escapes the lake root."""


def clean_path(path: str) -> str:
    """Normalise a lake-relative path; refuse absolute paths and `..` segments."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if path.startswith("/") or not parts or ".." in parts:
        raise LakePathError(f"lake path must be relative and inside the lake, got {path!r}")
    return "/".join(parts)


class DataLake(dg.ConfigurableResource, ABC):
    """Interface to the data lake. Paths are relative, '/'-separated."""

    @abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None: ...

    @abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """Raise FileNotFoundError naming the path when it does not exist."""

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Lake paths under `prefix`, sorted."""

    @abstractmethod
    def delete(self, path: str) -> None: ...

    @abstractmethod
    def uri(self, path: str) -> str:
        """An fsspec URI a separate process (or an Azure ML job) can read the object from."""

    def storage_options(self) -> dict[str, Any]:
        """fsspec storage options for `uri()`; none for local files."""
        return {}

    def write_parquet(self, path: str, df: pd.DataFrame) -> None:
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        self.write_bytes(path, buf.getvalue())

    def read_parquet(self, path: str) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.read_bytes(path)))

    def write_json(self, path: str, obj: Any) -> None:
        self.write_bytes(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))


class LocalLake(DataLake):
    """The lake as a local folder (embedded default)."""

    root: str = Field(description="Folder that holds the lake; created on first write.")

    def _full(self, path: str) -> Path:
        return Path(self.root) / clean_path(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        target = self._full(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write to a sibling temp file and rename: the replace is atomic on POSIX.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_bytes(self, path: str) -> bytes:
        full = self._full(path)
        if not full.is_file():
            raise FileNotFoundError(
                f"lake object not found: {clean_path(path)} (under {self.root})"
            )
        return full.read_bytes()

    def exists(self, path: str) -> bool:
        return self._full(path).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._full(prefix)
        if not base.is_dir():
            return []
        root = Path(self.root)
        return sorted(
            p.relative_to(root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, path: str) -> None:
        self._full(path).unlink(missing_ok=True)

    def uri(self, path: str) -> str:
        return str(self._full(path).resolve())


class AzureBlobLake(DataLake):
    """The lake in an Azure Blob Storage container (ADLS Gen2 accounts included).

    Uses the Blob API only, which Azurite also serves, so the same code is
    tested offline. Credentials come from the environment (`dg.EnvVar`), never
    from the repo: a connection string, or an account URL with
    DefaultAzureCredential (managed identity, az login).
    """

    container: str = Field(description="Blob container that holds the lake.")
    connection_string: str | None = Field(
        default=None, description="Storage connection string (use dg.EnvVar)."
    )
    account_url: str | None = Field(
        default=None, description="https://<account>.blob.core.windows.net when using Entra ID."
    )
    prefix: str = Field(default="", description="Folder inside the container for this lake.")

    def _service(self):  # -> BlobServiceClient; typed loosely to keep import lazy
        from azure.storage.blob import BlobServiceClient

        if self.connection_string:
            return BlobServiceClient.from_connection_string(self.connection_string)
        if self.account_url:
            from azure.identity import DefaultAzureCredential

            return BlobServiceClient(self.account_url, credential=DefaultAzureCredential())
        raise ValueError("AzureBlobLake needs connection_string or account_url")

    def _container(self):
        from azure.core.exceptions import ResourceExistsError

        client = self._service().get_container_client(self.container)
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        return client

    def _name(self, path: str) -> str:
        rel = clean_path(path)
        return f"{clean_path(self.prefix)}/{rel}" if self.prefix else rel

    def write_bytes(self, path: str, data: bytes) -> None:
        # A single put-blob commits atomically: readers see the old or the new blob.
        self._container().upload_blob(self._name(path), data, overwrite=True)

    def read_bytes(self, path: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._container().download_blob(self._name(path)).readall()
        except ResourceNotFoundError as err:
            raise FileNotFoundError(
                f"lake object not found: {clean_path(path)} (container {self.container})"
            ) from err

    def exists(self, path: str) -> bool:
        return self._container().get_blob_client(self._name(path)).exists()

    def list(self, prefix: str) -> list[str]:
        strip = len(clean_path(self.prefix)) + 1 if self.prefix else 0
        names = self._container().list_blobs(name_starts_with=self._name(prefix) + "/")
        return sorted(b.name[strip:] for b in names)

    def delete(self, path: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self._container().delete_blob(self._name(path))

    def uri(self, path: str) -> str:
        return f"abfs://{self.container}/{self._name(path)}"

    def storage_options(self) -> dict[str, Any]:
        if self.connection_string:
            return {"connection_string": self.connection_string}
        account = (self.account_url or "").split("//")[-1].split(".")[0]
        return {"account_name": account, "anon": False}
