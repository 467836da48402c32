"""The Azure ML data labeling backend, offline: a recorded export, azure-ai-ml's own loader.

Protects: a task puts each image (as PNG, named by a digest of its item id) in the lake
folder the Studio project imports; an export's lines (`image_url`, `label`), as a JSONL
file or an MLTable folder, map back to the items we sent, as the frame the labeled set
consumes; lines naming no item, several labels or an unknown class fail, naming the
line; nothing exported yet counts 0; annotating here is refused with where to label;
the labeled Data asset entity validates with `azure.ai.ml.load_data`.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from resources.labeling import LabelingError
from resources.labeling_azure import AzureMLLabelingExport, data_asset_yaml, image_name
from resources.lake import LocalLake

WS = "azureml://subscriptions/sub/resourcegroups/rg/workspaces/ws/datastores/workspaceblobstore"
# The lines an Azure ML image classification labeling project exports (AutoML for images'
# JSONL schema); the file names are `image_name` of r0:0, r1:0 and r2:0.
RECORDED = f"""\
{{"image_url": "{WS}/paths/lake/labeling/vision/azureml/t1/b379f7634dfae6f7a53dbc9f.png", \
"image_details": {{"format": "png", "width": "8px", "height": "8px"}}, "label": "cat"}}
{{"image_url": "{WS}/paths/lake/labeling/vision/azureml/t1/544c617b43e09262d154e248.png", \
"image_details": {{"format": "png", "width": "8px", "height": "8px"}}, "label": ["dog"]}}
"""


@pytest.fixture
def lake(tmp_path) -> LocalLake:
    return LocalLake(root=str(tmp_path / "lake"))


def task(lake: LocalLake, backend: AzureMLLabelingExport, n: int = 3) -> None:
    items = []
    for k in range(n):
        buf = io.BytesIO()
        np.save(buf, np.full((8, 8), 0.1 * k))  # not a PNG: the backend converts it
        digest = hashlib.sha256(buf.getvalue()).hexdigest()
        lake.write_bytes(f"monitoring/vision/images/{digest}", buf.getvalue())
        items.append({"item_id": f"r{k}:0", "image": f"sha256:{digest}", "prediction": "cat"})
    backend.create_task("vision", "t1", items, "image", ["cat", "dog"])


def test_images_go_where_the_studio_project_imports_them(lake, tmp_path):
    backend = AzureMLLabelingExport(
        lake=lake,
        subscription_id="sub",
        resource_group="rg",
        workspace="ws",
        export_path=str(tmp_path / "none"),
    )
    task(lake, backend)
    assert [image_name(f"r{k}:0") for k in range(3)] == [
        "b379f7634dfae6f7a53dbc9f.png",
        "544c617b43e09262d154e248.png",
        "33a45a4a3005819bb57ebfbf.png",
    ]  # the recorded export names these
    uploaded = lake.list("labeling/vision/azureml/t1")
    assert [p.rsplit("/", 1)[-1] for p in uploaded] == sorted(
        image_name(f"r{k}:0") for k in range(3)
    )
    assert Image.open(io.BytesIO(lake.read_bytes(uploaded[0]))).format == "PNG"
    ref = backend.tasks("vision")[0]
    assert ref.url.startswith("https://ml.azure.com/labeling?wsid=/subscriptions/sub/")
    assert backend.count_completed("vision") == 0  # nothing exported yet
    with pytest.raises(LabelingError, match="labeled in Azure ML Studio"):
        backend.annotate("vision", [{"item_id": "r0:0", "label": "cat", "annotator": "me"}])


@pytest.mark.parametrize("layout", ["jsonl", "mltable"])
def test_an_export_maps_back_to_the_items(lake, tmp_path, layout):
    export = tmp_path / "exports" / "vision"
    if layout == "jsonl":
        export = export.with_suffix(".jsonl")
        export.parent.mkdir(parents=True)
        export.write_text(RECORDED)
    else:
        (export / "labels").mkdir(parents=True)
        (export / "labels" / "part-0.jsonl").write_text(RECORDED)
        (export / "MLTable").write_text(
            "paths:\n  - file: ./labels/part-0.jsonl\ntransformations:\n  - read_json_lines:\n"
            "      encoding: utf8\n"
        )
    pattern = str(export).replace("vision", "{scenario}")
    backend = AzureMLLabelingExport(lake=lake, export_path=pattern)
    task(lake, backend)
    assert backend.count_completed("vision") == 2
    assert backend.annotations("vision").values.tolist() == [
        ["r0:0", "cat", "azureml", False],
        ["r1:0", "dog", "azureml", False],
    ]


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"image_url": "azureml://x/paths/elsewhere.png", "label": "cat"}', "labels no item"),
        (f'{{"image_url": "x/{image_name("r0:0")}", "label": ["cat", "dog"]}}', "2 labels"),
        (f'{{"image_url": "x/{image_name("r0:0")}", "label": "cow"}}', "not one of the task"),
        ("{not json", "line 1 is not JSON"),
    ],
)
def test_a_bad_export_line_is_named(lake, tmp_path, line, match):
    export = tmp_path / "export.jsonl"
    export.write_text(line + "\n")
    backend = AzureMLLabelingExport(lake=lake, export_path=str(export))
    task(lake, backend, n=1)
    with pytest.raises(LabelingError, match=match):
        backend.annotations("vision")


def test_the_labeled_data_asset_validates_with_azure_ai_ml(lake):
    pytest.importorskip("azure.ai.ml", reason="azure-ai-ml (the `azure` extra) is not installed")
    from marshmallow.exceptions import ValidationError

    backend = AzureMLLabelingExport(lake=lake)
    folder = "azureml://datastores/workspaceblobstore/paths/labeling/vision/export/"
    entity = backend.data_asset("vision", "3", folder)
    assert (entity.name, entity.version, entity.type, entity.path) == (
        "vision-labels",
        "3",
        "mltable",
        folder,
    )
    assert backend.data_asset("vision", "4", folder + "labels.jsonl").type == "uri_file"
    from azure.ai.ml import load_data

    bad = data_asset_yaml("vision-labels", "5", folder).replace("type: mltable", "type: table")
    with pytest.raises(ValidationError, match="Must be one of"):
        load_data(source=io.StringIO(bad))


def test_texts_go_as_text_files_named_by_item(lake, tmp_path):
    backend = AzureMLLabelingExport(
        lake=lake, subscription_id="s", resource_group="r", workspace="w",
        export_path=str(tmp_path / "none"),
    )  # fmt: skip
    items = [{"item_id": "q1:0", "text": "too bussin, a great flick", "prediction": "fresh"}]
    backend.create_task("nlp", "t1", items, "text", ["fresh", "rotten"])
    name = image_name("q1:0").replace(".png", ".txt")
    assert lake.read_bytes(f"labeling/nlp/azureml/t1/{name}") == b"too bussin, a great flick"
    with pytest.raises(LabelingError, match="not tabular"):
        backend.create_task("nlp", "t2", items, "tabular", ["fresh", "rotten"])
