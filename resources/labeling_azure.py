"""Azure ML data labeling backend: labels come from the project's exported Data asset.

Azure ML labeling projects are made and worked in Azure ML Studio; no SDK creates
them. So `create_task` puts each task's images (PNG) or texts in the lake under
`labeling/<scenario>/azureml/<task_id>/`, the folder the Studio project imports
(incremental refresh), and labelers work there. Studio then exports the labels as a
Data asset version (MLTable over JSONL, or a JSONL file) whose lines carry
`image_url` (an `azureml://.../paths/<path>` URI) and `label`, as AutoML for images
reads them. This backend reads the latest version of the `data_name` asset (or a
local copy at `export_path`, which tests use) and maps each line back to its item by
the image's file name, which is a digest of the item id (`image_name`); text lines
map by their `text`. The export has no annotator ids (Studio consolidates its own
labelers), so every label counts as one annotation by `azureml`.

The Data asset is built and validated with azure-ai-ml's own loader (`data_asset`), so
a wrong entity fails offline. azure-ai-ml is the optional `azure` extra, imported
inside the methods that use it.
"""

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mlops_core.labeling import ITEM_ID
from resources.labeling import LabelingError, LabelingProject, annotation_frame, class_value

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd
    from azure.ai.ml.entities import Data

ANNOTATOR = "azureml"
_AZUREML_PATH = re.compile(r"^azureml://(?:.*/)?datastores/([^/]+)/paths/(.*)$")


def image_name(item_id: str) -> str:
    """The file an item's image is uploaded as: unique per item, safe in any URL."""
    return hashlib.sha256(item_id.encode()).hexdigest()[:24] + ".png"


def data_asset_yaml(name: str, version: str, path: str, description: str = "") -> str:
    """The YAML of a labeled Data asset version (an MLTable folder or a JSONL file)."""
    kind = "uri_file" if path.endswith(".jsonl") else "mltable"
    lines = [
        "$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json",
        f"name: {name}",
        f'version: "{version}"',
        f"type: {kind}",
        f"path: {path}",
        f"description: {json.dumps(description or 'labels exported by Azure ML data labeling')}",
    ]
    return "\n".join(lines) + "\n"


def jsonl_rows(text: str, source: str) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as err:
                raise LabelingError(f"{source} line {n} is not JSON: {err}") from err
    return rows


class AzureMLLabelingExport(LabelingProject):
    """Labels from an Azure ML data labeling project's exported labeled Data asset."""

    subscription_id: str | None = Field(default=None, description="AZURE_SUBSCRIPTION_ID.")
    resource_group: str | None = Field(default=None, description="AZURE_RESOURCE_GROUP.")
    workspace: str | None = Field(default=None, description="Workspace of the labeling project.")
    data_name: str = Field(
        default="{scenario}-labels", description="The exported labeled Data asset's name."
    )
    export_path: str | None = Field(
        default=None,
        description="A local copy of the export (JSONL file or MLTable folder); "
        "`{scenario}` is filled in. When set, Azure ML is not asked.",
    )

    def _studio_url(self) -> str:
        ws = (
            f"/subscriptions/{self.subscription_id}/resourcegroups/{self.resource_group}"
            f"/workspaces/{self.workspace}"
        )
        return f"https://ml.azure.com/labeling?wsid={ws}"

    def _open(
        self, scenario: str, task_id: str, items: list[dict], task_format: str, classes: list
    ) -> tuple[str, dict[str, Any]]:
        from mlops_core.labeling_view import png_bytes

        folder = f"labeling/{scenario}/azureml/{task_id}"
        for item in items:
            if task_format in ("image", "segmentation"):
                data = png_bytes(self.image_bytes(scenario, str(item.get("image", ""))))
                self.lake.write_bytes(f"{folder}/{image_name(str(item[ITEM_ID]))}", data)
            elif task_format == "text":
                name = image_name(str(item[ITEM_ID])).replace(".png", ".txt")
                self.lake.write_bytes(f"{folder}/{name}", str(item["text"]).encode())
            else:
                raise LabelingError("Azure ML data labeling labels images and text, not tabular")
        return self._studio_url(), {"azureml_folder": self.lake.uri(folder)}

    def data_asset(self, scenario: str, version: str, path: str) -> "Data":
        """The labeled Data asset entity, validated by azure-ai-ml's own loader."""
        import io

        from azure.ai.ml import load_data

        name = self.data_name.format(scenario=scenario)
        return load_data(source=io.StringIO(data_asset_yaml(name, version, path)))

    def export_lines(self, scenario: str) -> list[dict[str, Any]]:
        """The lines of the latest labeled export (a local copy when `export_path` is set)."""
        if self.export_path:
            return _local_export(Path(self.export_path.format(scenario=scenario)))
        return self._workspace_export(scenario)

    def _workspace_export(self, scenario: str) -> list[dict[str, Any]]:
        from azure.identity import DefaultAzureCredential
        from azure.storage.blob import ContainerClient

        from resources.azure_ml import ml_client

        if not (self.subscription_id and self.resource_group and self.workspace):
            raise LabelingError("AzureMLLabelingExport needs subscription, group and workspace")
        credential = DefaultAzureCredential()
        client = ml_client(self.subscription_id, self.resource_group, self.workspace)
        asset = client.data.get(self.data_name.format(scenario=scenario), label="latest")
        match = _AZUREML_PATH.match(str(asset.path))
        if not match:
            raise LabelingError(
                f"export {asset.name}:{asset.version} is at {asset.path}, "
                "not on a datastore (azureml://.../datastores/<d>/paths/<p>)"
            )
        store = client.datastores.get(match.group(1))
        container = ContainerClient(
            f"https://{store.account_name}.blob.core.windows.net",
            store.container_name,
            credential=credential,
        )
        prefix = match.group(2).rstrip("/")
        names = [b.name for b in container.list_blobs(name_starts_with=prefix)]
        rows = []
        for name in sorted(n for n in names if n.endswith(".jsonl")):
            text = container.download_blob(name).readall().decode()
            rows += jsonl_rows(text, f"{asset.name}:{asset.version}/{name}")
        return rows

    def annotations(self, scenario: str) -> "pd.DataFrame":
        by_file, by_text, classes_of = {}, {}, {}
        for m in self.manifests(scenario):
            for item in self.task_items(scenario, m["task_id"]):
                by_file[image_name(item[ITEM_ID])] = item[ITEM_ID]
                if "text" in item:
                    by_text[str(item["text"])] = item[ITEM_ID]
                classes_of[item[ITEM_ID]] = m["classes"]
        rows = []
        for n, line in enumerate(self.export_lines(scenario), 1):
            if "image_url" in line:
                item = by_file.get(str(line["image_url"]).rsplit("/", 1)[-1])
            else:
                item = by_text.get(str(line.get("text")))
            if item is None:
                raise LabelingError(f"{scenario} export line {n} labels no item we sent: {line}")
            label = line.get("label")
            if isinstance(label, list):  # multi-label export: one class per item here
                if len(label) != 1:
                    raise LabelingError(f"export line {n} has {len(label)} labels, expected one")
                label = label[0]
            rows.append(
                {
                    ITEM_ID: item,
                    "label": class_value(label, classes_of[item]),
                    "annotator": ANNOTATOR,
                    "reviewed": False,
                }
            )
        return annotation_frame(rows)

    def count_completed(self, scenario: str) -> int:
        return len(self.export_lines(scenario))

    def annotate(self, scenario: str, annotations: list[dict[str, Any]]) -> int:
        raise LabelingError(
            f"{scenario} is labeled in Azure ML Studio ({self._studio_url()}); its labels "
            f"arrive with the next export of the {self.data_name.format(scenario=scenario)} "
            "Data asset"
        )


def _local_export(path: Path) -> list[dict[str, Any]]:
    """A JSONL file, or an MLTable folder's JSONL files (its `paths`, else every .jsonl)."""
    if path.is_file():
        return jsonl_rows(path.read_text(), str(path))
    if not path.is_dir():
        return []  # nothing exported yet
    files = sorted(path.rglob("*.jsonl"))
    mltable = path / "MLTable"
    if mltable.is_file():
        import yaml

        spec = yaml.safe_load(mltable.read_text()) or {}
        listed = [path / p["file"] for p in spec.get("paths", []) if "file" in p]
        files = listed or files
    rows = []
    for file in files:
        rows += jsonl_rows(file.read_text(), str(file))
    return rows
