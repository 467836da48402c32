"""The approvals store on Azure Blob Storage: one JSON blob per record, created write-once.

Every record is created with `upload_blob(overwrite=False)`, which sends
`If-None-Match: *`: the service creates the blob only if no blob of that name
exists, so of two concurrent writers one gets 201 and the other 409 (a
compare-and-set without a lock). Finalizing a decision (its audit seq) is a
conditional overwrite on the blob's ETag (`If-Match`). Blob names quote the
model name, so no name can reach another record's path. Uses the Blob API only,
which Azurite serves too. The container must allow that one overwrite, so it
cannot carry a WORM immutability policy: restrict who may write to it (the
Dagster and CLI identities) instead; the audit trail's anchors are the
immutable part.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import quote

from pydantic import Field

from mlops_core.governance.trust import PROD, AlreadyRecorded
from resources.approvals_store import ApprovalStore, Record, version_order


def _q(part: str) -> str:
    return quote(str(part), safe="")


class AzureBlobApprovalStore(ApprovalStore):
    """Records as write-once blobs under `prefix` in `container`."""

    container: str = Field(description="Blob container of the governance records.")
    connection_string: str | None = Field(
        default=None, description="Storage connection string (use dg.EnvVar)."
    )
    account_url: str | None = Field(
        default=None, description="https://<account>.blob.core.windows.net when using Entra ID."
    )
    prefix: str = Field(default="approvals/", description="Folder inside the container.")

    def _client(self) -> Any:  # ContainerClient; typed loosely to keep the import lazy
        from azure.storage.blob import BlobServiceClient

        if self.connection_string:
            service = BlobServiceClient.from_connection_string(self.connection_string)
        elif self.account_url:
            from azure.identity import DefaultAzureCredential

            service = BlobServiceClient(self.account_url, credential=DefaultAzureCredential())
        else:
            raise ValueError("AzureBlobApprovalStore needs connection_string or account_url")
        return service.get_container_client(self.container)

    def _create(self, name: str, record: Record) -> Record | None:
        """Create blob `name` holding `record`; the existing record instead if it exists."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        client, data = self._client(), json.dumps(record).encode()
        for attempt in (1, 2):
            try:
                client.upload_blob(self.prefix + name, data, overwrite=False)
                return None
            except ResourceExistsError:
                return self._read(self.prefix + name) or {}
            except ResourceNotFoundError:  # no container yet: create it once, then retry
                if attempt == 2:
                    raise
                with contextlib.suppress(ResourceExistsError):
                    client.create_container()
        return None

    def _read(self, full_name: str) -> Record | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return json.loads(self._client().download_blob(full_name).readall())
        except ResourceNotFoundError:
            return None

    def _list(self, folder: str) -> list[Record]:
        from azure.core.exceptions import ResourceNotFoundError

        client = self._client()
        try:
            names = [b.name for b in client.list_blobs(name_starts_with=self.prefix + folder)]
        except ResourceNotFoundError:
            return []
        return [r for n in names if (r := self._read(n)) is not None]

    @staticmethod
    def _decision_name(model_name: str, dev_version: str, environment: str) -> str:
        return f"decisions/{_q(model_name)}/{_q(dev_version)}/{_q(environment)}.json"

    def claim_decision(self, record: Record) -> None:
        key = (record["model_name"], str(record["dev_version"]), record["environment"])
        existing = self._create(self._decision_name(*key), record)
        if existing is not None:
            raise AlreadyRecorded(f"a decision on {key[0]}:{key[1]} ({key[2]})", existing)

    def finalize_decision(self, record: Record) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        name = self.prefix + self._decision_name(
            record["model_name"], str(record["dev_version"]), record["environment"]
        )
        blob = self._client().get_blob_client(name)
        current = blob.download_blob()
        stored = json.loads(current.readall())
        if stored.get("approval_id") != record["approval_id"] or stored.get("audit_seq"):
            raise AlreadyRecorded(f"decision {record['approval_id']} is not open to finalize")
        try:
            blob.upload_blob(json.dumps(record).encode(), overwrite=True,
                             etag=current.properties.etag,
                             match_condition=MatchConditions.IfNotModified)  # fmt: skip
        except ResourceModifiedError:
            raise AlreadyRecorded(f"decision {record['approval_id']} changed meanwhile") from None

    def release_decision(self, record: Record) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        name = self.prefix + self._decision_name(
            record["model_name"], str(record["dev_version"]), record["environment"]
        )
        stored = self._read(name) or {}
        if stored.get("approval_id") == record["approval_id"] and not stored.get("audit_seq"):
            with contextlib.suppress(ResourceNotFoundError):
                self._client().delete_blob(name)

    def decision(self, model_name: str, dev_version: str, environment: str = PROD) -> Record | None:
        return self._read(self.prefix + self._decision_name(model_name, dev_version, environment))

    def decisions(self, model_name: str) -> list[Record]:
        return sorted(self._list(f"decisions/{_q(model_name)}/"), key=version_order)

    def record_staging(self, record: Record) -> None:
        model, version, run_id = record["model_name"], str(record["version"]), record["run_id"]
        name = f"staging/{_q(model)}/{_q(version)}/{_q(run_id)}.json"
        if self._create(name, record) is not None:
            raise AlreadyRecorded(f"staging run {run_id} of {model}:{version}")

    def staging_results(self, model_name: str, version: str) -> list[Record]:
        found = self._list(f"staging/{_q(model_name)}/{_q(version)}/")
        return sorted(found, key=lambda r: (str(r.get("recorded_at", "")), str(r["run_id"])))

    def record_registration(self, record: Record) -> Record:
        name = f"registrations/{_q(record['model_name'])}/{_q(record['version'])}.json"
        return self._create(name, record) or record

    def registration(self, model_name: str, version: str) -> Record | None:
        return self._read(f"{self.prefix}registrations/{_q(model_name)}/{_q(version)}.json")

    def claim_promotion(self, record: Record) -> None:
        existing = self._create(f"promotions/{_q(record['approval_id'])}.json", record)
        if existing is not None:
            raise AlreadyRecorded(f"a promotion of approval {record['approval_id']}", existing)

    def release_promotion(self, approval_id: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self._client().delete_blob(f"{self.prefix}promotions/{_q(approval_id)}.json")

    def promotion(self, approval_id: str) -> Record | None:
        return self._read(f"{self.prefix}promotions/{_q(approval_id)}.json")
