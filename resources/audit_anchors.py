"""Audit-head anchors that need more than the stdlib (see mlops_core/governance/anchors.py).

- `AzureBlobAnchor`: one blob per anchored head, named `<prefix><seq>-<hash>` and
  created with `overwrite=False`, in a container meant to carry a time-based
  immutability (WORM) policy. Under that policy nobody, the account owner
  included, can overwrite or delete a blob during the retention period, so the
  anchored past cannot be changed; the name itself carries the hash, so a
  listing is the whole history (no downloads, and no mutable metadata to trust).
  Azurite, which the tests use, does not enforce immutability policies.
- `DagsterEventLogAnchor`: an `AssetObservation` on `platform/audit_anchor` in the
  Dagster instance's event log: a second place, not an immutable one (the
  instance's owner can wipe it).
- `build_anchors`: the anchors a `Governance` resource is configured with.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mlops_core.governance.anchors import Anchor, AnchorError, AuditAnchor, SqliteAnchor

ANCHOR_ASSET_KEY = ("platform", "audit_anchor")
_PAGE = 1000


class AzureBlobAnchor:
    """Anchors as write-once blobs `<prefix><seq:012d>-<hash>` in `container_client`'s container.

    The container is not created here: create it with an immutability policy
    (docs/architecture.md), or a blob anchor is only as strong as its ACLs.
    """

    def __init__(self, container_client: Any, prefix: str = "audit-anchors/") -> None:
        self.container = container_client
        self.prefix = prefix

    @classmethod
    def connect(
        cls,
        container: str,
        connection_string: str | None = None,
        account_url: str | None = None,
        prefix: str = "audit-anchors/",
    ) -> AzureBlobAnchor:
        from azure.storage.blob import ContainerClient

        if connection_string:
            return cls(ContainerClient.from_connection_string(connection_string, container), prefix)
        if account_url:
            from azure.identity import DefaultAzureCredential

            client = ContainerClient(account_url, container, credential=DefaultAzureCredential())
            return cls(client, prefix)
        raise ValueError("AzureBlobAnchor needs connection_string or account_url")

    @property
    def name(self) -> str:
        return f"azure-blob:{self.container.url.rstrip('/')}/{self.prefix}"

    def publish(self, seq: int, head_hash: str) -> None:
        from azure.core.exceptions import AzureError, ResourceExistsError

        stem = f"{self.prefix}{seq:012d}-"
        body = {"seq": seq, "hash": head_hash, "anchored_at": datetime.now(UTC).isoformat()}
        try:
            if next(iter(self.container.list_blobs(name_starts_with=stem)), None) is not None:
                raise AnchorError(f"seq {seq} is already anchored: the trail was cut or rewritten")
            self.container.upload_blob(f"{stem}{head_hash}", json.dumps(body), overwrite=False)
        except ResourceExistsError as err:
            raise AnchorError(f"seq {seq} is already anchored with this hash") from err
        except AzureError as err:
            raise AnchorError(f"cannot anchor seq {seq}: {err}") from err

    def history(self) -> list[Anchor]:
        from azure.core.exceptions import AzureError

        anchors: list[Anchor] = []
        try:
            names = [b.name for b in self.container.list_blobs(name_starts_with=self.prefix)]
        except AzureError as err:
            raise AnchorError(f"cannot list anchors: {err}") from err
        for name in names:
            seq, _, head_hash = name[len(self.prefix) :].partition("-")
            if not seq.isdigit() or len(head_hash) != 64:
                raise AnchorError(f"blob {name!r} is not an anchor: someone else writes here")
            anchors.append((int(seq), head_hash))
        return sorted(anchors)

    def latest(self) -> Anchor | None:
        anchors = self.history()
        return anchors[-1] if anchors else None


class DagsterEventLogAnchor:
    """Anchors as observations of `platform/audit_anchor` in a Dagster instance's event log."""

    def __init__(self, instance: Any) -> None:
        self.instance = instance

    @property
    def name(self) -> str:
        return "dagster-event-log:" + "/".join(ANCHOR_ASSET_KEY)

    def publish(self, seq: int, head_hash: str) -> None:
        import dagster as dg

        observation = dg.AssetObservation(
            asset_key=dg.AssetKey(list(ANCHOR_ASSET_KEY)),
            description="audit trail head",
            metadata={"seq": seq, "hash": head_hash},
        )
        self.instance.report_runless_asset_event(observation)

    def _fetch(self, limit: int, cursor: str | None, ascending: bool) -> Any:
        import dagster as dg

        key = dg.AssetKey(list(ANCHOR_ASSET_KEY))
        return self.instance.fetch_observations(key, limit, cursor=cursor, ascending=ascending)

    @staticmethod
    def _anchors(records: Any) -> list[Anchor]:
        out = []
        for record in records:
            meta = record.asset_observation.metadata
            out.append((int(meta["seq"].value), str(meta["hash"].value)))
        return out

    def history(self) -> list[Anchor]:
        anchors: list[Anchor] = []
        cursor = None
        while True:
            page = self._fetch(_PAGE, cursor, ascending=True)
            anchors += self._anchors(page.records)
            if not page.has_more:
                return anchors
            cursor = page.cursor

    def latest(self) -> Anchor | None:
        newest = self._anchors(self._fetch(1, None, ascending=False).records)
        return newest[0] if newest else None


def build_anchors(
    anchor_path: str | None = None,
    container: str | None = None,
    connection_string: str | None = None,
    account_url: str | None = None,
    dagster_event_log: bool = False,
) -> list[AuditAnchor]:
    """The configured anchors: local SQLite, Azure blob container, Dagster event log."""
    anchors: list[AuditAnchor] = []
    if anchor_path:
        anchors.append(SqliteAnchor(anchor_path))
    if container:
        anchors.append(AzureBlobAnchor.connect(container, connection_string, account_url))
    if dagster_event_log:
        import dagster as dg

        anchors.append(DagsterEventLogAnchor(dg.DagsterInstance.get()))
    return anchors
