"""The approvals store: governance records that registry tags only display.

Four kinds of record, each written once (insert-or-fail, a compare-and-set;
the losing writer gets `AlreadyRecorded` carrying the winner's record):

- decisions, one per (model, dev version, environment): who approved or
  rejected, as which persona, calling as which identity, why, under which
  policy hash, and the seq/hash of the audit entry (set once, afterwards);
- staging results per (model, version, run): outcome, checks and thresholds;
- registrations per (model, version): who trained and who registered it;
- promotions per approval id: claimed before the copy to prod, so one
  approval is never promoted twice.

`mlops_core.governance.trust.ApprovalStoreLike` is the contract; `LocalApprovalStore`
keeps the records in SQLite under MLOPS_HOME/governance/ (UNIQUE constraints),
`AzureBlobApprovalStore` (`approvals_store_azure.py`) as blobs created with
`If-None-Match: *`. Both are tested by one contract test, Azure against Azurite.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from mlops_core.governance.trust import PROD, AlreadyRecorded

Record = dict[str, Any]


class ApprovalStore(dg.ConfigurableResource, ABC):
    """Governance records, each written once; see the module docstring."""

    @abstractmethod
    def claim_decision(self, record: Record) -> None:
        """Insert the decision (its `audit_seq` still None) or raise `AlreadyRecorded`."""

    @abstractmethod
    def finalize_decision(self, record: Record) -> None:
        """Set the claimed decision's audit seq and hash, once."""

    @abstractmethod
    def release_decision(self, record: Record) -> None:
        """Drop a claimed decision that never got its audit entry."""

    @abstractmethod
    def decision(self, model_name: str, dev_version: str, environment: str = PROD) -> Record | None:
        """The decision on one version, or None."""

    @abstractmethod
    def decisions(self, model_name: str) -> list[Record]:
        """Every decision on a model, oldest version first."""

    @abstractmethod
    def record_staging(self, record: Record) -> None:
        """Add one staging run's result (`model_name`, `version`, `run_id` keyed)."""

    @abstractmethod
    def staging_results(self, model_name: str, version: str) -> list[Record]:
        """One version's staging results, oldest first."""

    @abstractmethod
    def record_registration(self, record: Record) -> Record:
        """Record who trained and registered a version; the first record wins and is returned."""

    @abstractmethod
    def registration(self, model_name: str, version: str) -> Record | None:
        """Who trained and registered a version, or None."""

    @abstractmethod
    def claim_promotion(self, record: Record) -> None:
        """Claim an approval id for promotion, or raise `AlreadyRecorded`."""

    @abstractmethod
    def release_promotion(self, approval_id: str) -> None:
        """Give a claim back after a promotion that failed."""

    @abstractmethod
    def promotion(self, approval_id: str) -> Record | None:
        """The promotion claim of an approval id, or None."""


def version_order(record: Record) -> tuple[int, str]:
    version = str(record.get("dev_version") or record.get("version") or "")
    return (int(version) if version.isdigit() else 0, version)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    model_name TEXT NOT NULL, dev_version TEXT NOT NULL, environment TEXT NOT NULL,
    approval_id TEXT NOT NULL UNIQUE, audit_seq INTEGER, record TEXT NOT NULL,
    UNIQUE (model_name, dev_version, environment));
CREATE TABLE IF NOT EXISTS staging_results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, model_name TEXT NOT NULL, version TEXT NOT NULL,
    run_id TEXT NOT NULL, record TEXT NOT NULL, UNIQUE (model_name, version, run_id));
CREATE TABLE IF NOT EXISTS registrations (
    model_name TEXT NOT NULL, version TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (model_name, version));
CREATE TABLE IF NOT EXISTS promotions (approval_id TEXT PRIMARY KEY, record TEXT NOT NULL);
"""


class LocalApprovalStore(ApprovalStore):
    """SQLite on the Dagster host; every write is one statement in its own transaction."""

    path: str = Field(description="SQLite file, e.g. MLOPS_HOME/governance/approvals.db.")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            yield conn
        finally:
            conn.close()

    def _one(self, query: str, *args: Any) -> Record | None:
        with self._db() as db:
            row = db.execute(query, args).fetchone()
        return json.loads(row[0]) if row else None

    def _all(self, query: str, *args: Any) -> list[Record]:
        with self._db() as db:
            return [json.loads(row[0]) for row in db.execute(query, args).fetchall()]

    def _insert(self, what: str, query: str, args: tuple, existing: Any) -> None:
        try:
            with self._db() as db:
                db.execute(query, args)
        except sqlite3.IntegrityError:
            raise AlreadyRecorded(f"{what} is already recorded", existing()) from None

    def claim_decision(self, record: Record) -> None:
        key = (record["model_name"], record["dev_version"], record["environment"])
        self._insert(
            f"a decision on {key[0]}:{key[1]} ({key[2]})",
            "INSERT INTO decisions VALUES (?, ?, ?, ?, NULL, ?)",
            (*key, record["approval_id"], json.dumps(record)),
            lambda: self.decision(*key),
        )

    def finalize_decision(self, record: Record) -> None:
        with self._db() as db:
            done = db.execute(
                "UPDATE decisions SET audit_seq = ?, record = ? "
                "WHERE approval_id = ? AND audit_seq IS NULL",
                (record["audit_seq"], json.dumps(record), record["approval_id"]),
            ).rowcount
        if done != 1:
            raise AlreadyRecorded(f"decision {record['approval_id']} is not open to finalize")

    def release_decision(self, record: Record) -> None:
        with self._db() as db:
            db.execute(
                "DELETE FROM decisions WHERE approval_id = ? AND audit_seq IS NULL",
                (record["approval_id"],),
            )

    def decision(self, model_name: str, dev_version: str, environment: str = PROD) -> Record | None:
        return self._one(
            "SELECT record FROM decisions WHERE model_name = ? AND dev_version = ? "
            "AND environment = ?",
            model_name, str(dev_version), environment,
        )  # fmt: skip

    def decisions(self, model_name: str) -> list[Record]:
        found = self._all("SELECT record FROM decisions WHERE model_name = ?", model_name)
        return sorted(found, key=version_order)

    def record_staging(self, record: Record) -> None:
        key = (record["model_name"], str(record["version"]), record["run_id"])
        self._insert(
            f"staging run {key[2]} of {key[0]}:{key[1]}",
            "INSERT INTO staging_results (model_name, version, run_id, record) "
            "VALUES (?, ?, ?, ?)",
            (*key, json.dumps(record)),
            lambda: None,
        )  # fmt: skip

    def staging_results(self, model_name: str, version: str) -> list[Record]:
        return self._all(
            "SELECT record FROM staging_results WHERE model_name = ? AND version = ? "
            "ORDER BY seq",
            model_name, str(version),
        )  # fmt: skip

    def record_registration(self, record: Record) -> Record:
        key = (record["model_name"], str(record["version"]))
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO registrations VALUES (?, ?, ?)", (*key, json.dumps(record))
            )
        return self.registration(*key) or record

    def registration(self, model_name: str, version: str) -> Record | None:
        return self._one(
            "SELECT record FROM registrations WHERE model_name = ? AND version = ?",
            model_name, str(version),
        )  # fmt: skip

    def claim_promotion(self, record: Record) -> None:
        approval_id = record["approval_id"]
        self._insert(
            f"a promotion of approval {approval_id}",
            "INSERT INTO promotions VALUES (?, ?)",
            (approval_id, json.dumps(record)),
            lambda: self.promotion(approval_id),
        )

    def release_promotion(self, approval_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM promotions WHERE approval_id = ?", (approval_id,))

    def promotion(self, approval_id: str) -> Record | None:
        return self._one("SELECT record FROM promotions WHERE approval_id = ?", approval_id)
