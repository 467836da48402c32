"""The labeling project: tasks people label, and the annotations they complete.

One interface, three backends (chosen per environment in `resources/env.py`):
- `LocalLabelingProject` (embedded default): the lake files of `mlops_core.labeling`;
  people label with `mlops label annotate`.
- `LabelStudioProject` (`resources/labeling_studio.py`): a Label Studio server.
- `AzureMLLabelingExport` (`resources/labeling_azure.py`): an Azure ML data labeling
  project's exported labeled Data asset.

Whatever the backend, the lake keeps what was sent (each task's items and a manifest with
its format, classes and link), so labeled sets join annotations to the exact items and a
tool's outage never loses a task's record. `count_completed` is called by the labels
sensor on every tick: backends answer it from one cheap call, never an export.
"""

import json
import re
import uuid
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from mlops_core.labeling import (
    ANNOTATION_FIELDS,
    ITEM_ID,
    TASK_FORMATS,
    TaskRef,
    annotations_dir,
    image_path,
    manifests_dir,
    pending_for,
    review_path,
    tasks_dir,
)
from resources.lake import DataLake

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class LabelingError(RuntimeError):
    """A labeling operation that cannot proceed; the message names the problem."""


def read_jsonl(lake: DataLake, paths: list[str], required: tuple[str, ...] = ()) -> list[dict]:
    """Every JSONL line of `paths`; a line that is not JSON or lacks a field fails, naming it."""
    rows = []
    for path in paths:
        for n, line in enumerate(lake.read_bytes(path).decode().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as err:
                raise LabelingError(f"{path} line {n} is not JSON: {err}") from err
            absent = [f for f in required if f not in row]
            if absent:
                raise LabelingError(f"{path} line {n} lacks {absent}")
            rows.append(row)
    return rows


def annotation_frame(rows: list[dict[str, Any]]) -> "pd.DataFrame":
    """Annotations as the labeled set consumes them: item_id, label, annotator, reviewed."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=[*ANNOTATION_FIELDS, "reviewed"])
    flags = frame["reviewed"].map(lambda v: v is True or str(v).lower() == "true")
    frame["reviewed"] = flags.astype(bool)
    frame[ITEM_ID] = frame[ITEM_ID].astype(str)
    return frame


def class_value(label: Any, classes: list[Any]) -> Any:
    """`label` as the class it names (the class itself or its text, e.g. "1" for 1)."""
    if not classes:
        return label
    by_text = {str(c): c for c in classes}
    if str(label) in by_text:
        return by_text[str(label)]
    raise LabelingError(f"label {label!r} is not one of the task's classes {classes}")


class LabelingProject(dg.ConfigurableResource, ABC):
    """Tasks to label and completed annotations, for every scenario with labeling."""

    lake: DataLake = Field(description="Keeps each task's items, manifest and image bytes.")

    # -- tasks --------------------------------------------------------------------------
    def create_task(
        self,
        scenario: str,
        task_id: str,
        items: list[dict[str, Any]],
        task_format: str,
        classes: list[Any],
    ) -> TaskRef:
        """Send `items` to labelers as one task; each carries `item_id`, its fields,
        `prediction` (the pre-annotation), `why` and, for images, `image: sha256:<hex>`."""
        if not _SAFE_ID.match(task_id):
            raise LabelingError(f"task id {task_id!r} must be 1-64 of [A-Za-z0-9._-]")
        if task_format not in TASK_FORMATS:
            raise LabelingError(f"task format {task_format!r} is not one of {TASK_FORMATS}")
        if self.lake.exists(self._manifest_path(scenario, task_id)):
            raise LabelingError(f"{scenario} already has a task {task_id}")
        ids = [str(item.get(ITEM_ID, "")) for item in items]
        if not items or "" in ids or len(set(ids)) != len(ids):
            raise LabelingError(f"task {task_id}: items need distinct, non-empty {ITEM_ID}s")
        url, extra = self._open(scenario, task_id, items, task_format, list(classes))
        lines = "\n".join(json.dumps(item, default=str) for item in items) + "\n"
        self.lake.write_bytes(f"{tasks_dir(scenario)}/{task_id}.jsonl", lines.encode())
        manifest = {
            "task_id": task_id,
            "task_format": task_format,
            "classes": list(classes),
            "items": len(items),
            "url": url,
            "backend": type(self).__name__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **extra,
        }
        self.lake.write_json(self._manifest_path(scenario, task_id), manifest)
        return TaskRef(scenario, task_id, task_format, url, len(items))

    def manifests(self, scenario: str) -> list[dict[str, Any]]:
        """Every task's manifest, oldest first."""
        found = [self.lake.read_json(p) for p in self.lake.list(manifests_dir(scenario))]
        return sorted(found, key=lambda m: (m.get("created_at", ""), m["task_id"]))

    def manifest(self, scenario: str, task_id: str) -> dict[str, Any]:
        path = self._manifest_path(scenario, task_id)
        if not self.lake.exists(path):
            raise LabelingError(f"{scenario} has no labeling task {task_id!r}")
        return self.lake.read_json(path)

    def task_items(self, scenario: str, task_id: str | None = None) -> list[dict[str, Any]]:
        """The items sent for labeling (one task's, or every task's), as they were sent."""
        if task_id is not None:
            self.manifest(scenario, task_id)
            paths = [f"{tasks_dir(scenario)}/{task_id}.jsonl"]
        else:
            paths = [p for p in self.lake.list(tasks_dir(scenario)) if p.endswith(".jsonl")]
        items = read_jsonl(self.lake, paths, (ITEM_ID,))
        for item in items:
            item[ITEM_ID] = str(item[ITEM_ID])
        return items

    def task_url(self, scenario: str, task_id: str) -> str:
        """Where a person labels the task (the tool's page, or the task file locally)."""
        return str(self.manifest(scenario, task_id)["url"])

    def sent_items(self, scenario: str, task_id: str | None = None) -> list[dict[str, Any]]:
        """Every item sent (or one task's), with its task's id, format and classes."""
        tasks = [self.manifest(scenario, task_id)] if task_id else self.manifests(scenario)
        return [
            {**item, "task_id": m["task_id"], "task_format": m["task_format"],
             "classes": m["classes"]}
            for m in tasks
            for item in self.task_items(scenario, m["task_id"])
        ]  # fmt: skip

    def tasks(self, scenario: str) -> list[TaskRef]:
        """Every task with its progress (items with an annotation, annotations)."""
        annotations = self.annotations(scenario)
        per_item = annotations.groupby(ITEM_ID).size().to_dict() if len(annotations) else {}
        refs = []
        for m in self.manifests(scenario):
            counts = [per_item.get(i[ITEM_ID], 0) for i in self.task_items(scenario, m["task_id"])]
            labeled = sum(1 for c in counts if c)
            refs.append(TaskRef(scenario, m["task_id"], m["task_format"], m["url"], len(counts),
                                labeled, sum(counts)))  # fmt: skip
        return refs

    def image_bytes(self, scenario: str, ref: str) -> bytes:
        """The bytes of an image item (`sha256:<hex>`), as the lake holds them."""
        return self.lake.read_bytes(image_path(scenario, ref))

    # -- labeling -----------------------------------------------------------------------
    def pending_items(
        self, scenario: str, annotator: str, task_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Items `annotator` has not annotated yet, each with its task's id and classes."""
        items = self.sent_items(scenario, task_id)
        return pending_for(items, self.annotations(scenario), annotator)

    def set_review(self, scenario: str, review: list[dict[str, Any]], threshold: float) -> None:
        """Replace the review queue with `review` (item_id, votes, agreement rows)."""
        self.lake.write_json(review_path(scenario), {"min_agreement": threshold, "items": review})

    def review_items(self, scenario: str) -> list[dict[str, Any]]:
        """Queued items no reviewer has decided yet, with their votes and classes."""
        if not self.lake.exists(review_path(scenario)):
            return []
        queued = {str(r[ITEM_ID]): r for r in self.lake.read_json(review_path(scenario))["items"]}
        annotations = self.annotations(scenario)
        decided = set(annotations[annotations["reviewed"]][ITEM_ID]) if len(annotations) else set()
        return [
            {**item, "votes": queued[item[ITEM_ID]].get("votes"),
             "agreement": queued[item[ITEM_ID]].get("agreement")}
            for item in self.sent_items(scenario)
            if item[ITEM_ID] in queued and item[ITEM_ID] not in decided
        ]  # fmt: skip

    def checked_annotations(
        self, scenario: str, annotations: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """`annotations` validated against the tasks: known items, labels among the classes."""
        classes_of = {item[ITEM_ID]: item["classes"] for item in self.sent_items(scenario)}
        checked = []
        for a in annotations:
            absent = [f for f in ANNOTATION_FIELDS if a.get(f) in (None, "")]
            if absent:
                raise LabelingError(f"an annotation lacks {absent}: {a}")
            item = str(a[ITEM_ID])
            if item not in classes_of:
                raise LabelingError(f"{scenario} has no task item {item!r} to annotate")
            checked.append(
                {
                    ITEM_ID: item,
                    "label": class_value(a["label"], classes_of[item]),
                    "annotator": str(a["annotator"]),
                    "reviewed": bool(a.get("reviewed", False)),
                }
            )
        return checked

    def _manifest_path(self, scenario: str, task_id: str) -> str:
        return f"{manifests_dir(scenario)}/{task_id}.json"

    # -- what a backend implements --------------------------------------------------------
    @abstractmethod
    def _open(
        self, scenario: str, task_id: str, items: list[dict], task_format: str, classes: list
    ) -> tuple[str, dict[str, Any]]:
        """Open the task in the backend: (where people label it, extra manifest fields)."""

    @abstractmethod
    def annotations(self, scenario: str) -> "pd.DataFrame":
        """Completed annotations: item_id, label, annotator, reviewed (skips left out)."""

    @abstractmethod
    def count_completed(self, scenario: str) -> int:
        """How many completed annotations there are, cheaply (the sensor asks every tick)."""

    @abstractmethod
    def annotate(self, scenario: str, annotations: list[dict[str, Any]]) -> int:
        """Record annotations (item_id, label, annotator, reviewed?); returns how many."""


class LocalLabelingProject(LabelingProject):
    """The labeling project as lake files (embedded default); `mlops label` writes to it."""

    def _open(
        self, scenario: str, task_id: str, items: list[dict], task_format: str, classes: list
    ) -> tuple[str, dict[str, Any]]:
        return self.lake.uri(f"{tasks_dir(scenario)}/{task_id}.jsonl"), {}

    def _annotation_paths(self, scenario: str) -> list[str]:
        return [p for p in self.lake.list(annotations_dir(scenario)) if p.endswith(".jsonl")]

    def annotations(self, scenario: str) -> "pd.DataFrame":
        return annotation_frame(
            read_jsonl(self.lake, self._annotation_paths(scenario), ANNOTATION_FIELDS)
        )

    def count_completed(self, scenario: str) -> int:
        return sum(
            sum(1 for line in self.lake.read_bytes(path).splitlines() if line.strip())
            for path in self._annotation_paths(scenario)
        )

    def annotate(self, scenario: str, annotations: list[dict[str, Any]]) -> int:
        checked = self.checked_annotations(scenario, annotations)
        if not checked:
            return 0
        # One new file per call: writers never share a file, so no append can interleave,
        # and each answer a person gives is durable as soon as it is written.
        who = re.sub(r"[^A-Za-z0-9._-]", "_", checked[0]["annotator"])[:40]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = f"{annotations_dir(scenario)}/{stamp}-{who}-{uuid.uuid4().hex[:8]}.jsonl"
        lines = "".join(json.dumps(a, default=str) + "\n" for a in checked)
        self.lake.write_bytes(path, lines.encode())
        return len(checked)
