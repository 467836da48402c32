"""The Label Studio backend against a real Label Studio 1.23 server on 127.0.0.1.

Protects: a task becomes a Label Studio project with an image classification config,
its images inlined as PNG data URIs and the model's prediction as a pre-annotation;
annotations an annotator completes through the REST API come back as the frame the
labeled set consumes (skips left out, `ground_truth` as a review); `count_completed`
counts them from the project list; annotations made through the backend (the
simulated annotator, `mlops label`) are attributed to Label Studio users named after
the annotators; a wrong token is an error that says so.

The server runs from `.tools/label-studio-venv` (`make label-studio`, which also
migrates `.tools/label-studio-data` once); this module copies that migrated data dir,
so a start takes seconds, and stops the server it started. Slow: it starts a server.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import shutil
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from mlops_core.labeling import consolidate
from mlops_core.labeling_sim import SimulatedAnnotator
from resources import labeling_studio_server as server
from resources.labeling import LabelingError
from resources.labeling_studio import LabelStudioProject, label_config
from resources.lake import LocalLake
from tests.conftest import free_port

pytestmark = pytest.mark.slow
CLASSES = ["cat", "dog"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Iterator[tuple[str, str, str]]:
    """A running Label Studio: (url, token, the token user's email); stopped at the end."""
    if not server.binary().exists():
        pytest.skip(
            "Label Studio is not installed: `make label-studio` creates .tools/label-studio-venv"
        )
    data = tmp_path_factory.mktemp("label-studio-data")
    migrated = (server.DATA_DIR / server.DATABASE).exists()
    if migrated:  # a copy: the test's users and projects stay out of the developer's data
        shutil.copytree(server.DATA_DIR, data, dirs_exist_ok=True)
    email, token = f"test-{secrets.token_hex(4)}@mlops.test", secrets.token_hex(20)
    credentials = {
        "LABEL_STUDIO_USERNAME": email,
        "LABEL_STUDIO_USER_TOKEN": token,
        "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(16),
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = server.start(port, data, credentials, log=data / "server.log")
    try:
        server.wait_ready(url, proc, timeout_s=120 if migrated else 400)
        yield url, token, email
    finally:
        server.stop(proc)


def rest(studio, method: str, path: str, **kwargs):
    url, token, _ = studio
    response = httpx.request(
        method, f"{url}{path}", headers={"Authorization": f"Token {token}"}, timeout=30, **kwargs
    )
    assert response.is_success, response.text[:300]
    return response.json()


def image_items(lake: LocalLake, scenario: str, n: int) -> list[dict]:
    items = []
    for k in range(n):
        buf = io.BytesIO()
        Image.fromarray(np.full((8, 8), 40 * k, dtype=np.uint8)).save(buf, format="PNG")
        digest = hashlib.sha256(buf.getvalue()).hexdigest()
        lake.write_bytes(f"monitoring/{scenario}/images/{digest}", buf.getvalue())
        items.append(
            {
                "item_id": f"r{k}:0",
                "image": f"sha256:{digest}",
                "prediction": CLASSES[k % 2],
                "why": "uncertain",
            }
        )
    return items


def test_label_configs_name_the_classes():
    assert '<Choice value="a&amp;b"/>' in label_config("image", ["a&b"])
    assert "<BrushLabels" in label_config("segmentation", ["nucleus"])
    assert '<Text name="text" value="$text"/>' in label_config("text", CLASSES)


def test_round_trip_through_label_studio(studio, tmp_path):
    url, token, email = studio
    lake = LocalLake(root=str(tmp_path / "lake"))
    backend = LabelStudioProject(lake=lake, url=url, token=token)
    ref = backend.create_task("vision", "t1", image_items(lake, "vision", 3), "image", CLASSES)
    project_id = backend.manifest("vision", "t1")["label_studio_project"]
    assert ref.url == f"{url}/projects/{project_id}/data"
    tasks = sorted(
        rest(studio, "GET", f"/api/projects/{project_id}/tasks/", params={"page_size": 10}),
        key=lambda t: t["data"]["item_id"],
    )
    assert [t["data"]["item_id"] for t in tasks] == ["r0:0", "r1:0", "r2:0"]
    assert all(t["data"]["image"].startswith("data:image/png;base64,") for t in tasks)
    suggested = [t["predictions"][0]["result"][0]["value"]["choices"] for t in tasks]
    assert suggested == [["cat"], ["dog"], ["cat"]]  # the model's predictions, pre-annotated
    assert backend.count_completed("vision") == 0

    # an annotator labels two items, skips the third, and a reviewer marks one ground truth
    for task, choice, extra in [
        (tasks[0], "dog", {}),
        (tasks[1], "dog", {}),
        (tasks[2], None, {"was_cancelled": True}),
        (tasks[0], "cat", {"ground_truth": True}),
    ]:
        result = (
            []
            if choice is None
            else [
                {
                    "from_name": "label",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": [choice]},
                }
            ]
        )
        rest(
            studio,
            "POST",
            f"/api/tasks/{task['id']}/annotations/",
            json={"result": result, **extra},
        )
    assert backend.count_completed("vision") == 3  # the skip is not a completed label
    frame = backend.annotations("vision").sort_values(["item_id", "reviewed"])
    assert frame.values.tolist() == [
        ["r0:0", "dog", email, False],
        ["r0:0", "cat", email, True],
        ["r1:0", "dog", email, False],
    ]
    labels = consolidate(frame, 0.67).accepted.set_index("item_id")["label"].to_dict()
    assert labels == {"r0:0": "cat", "r1:0": "dog"}  # the reviewer decides r0:0

    # the simulated annotators label through the backend, each as its own Label Studio user
    sim = SimulatedAnnotator(
        lambda item: CLASSES[int(item["item_id"][1]) % 2], ["os:ana", "os:ben"]
    )
    assert sim.complete(backend, "vision") == 6
    frame = backend.annotations("vision")
    assert sorted(frame.query("annotator == 'os:ana'")["label"]) == ["cat", "cat", "dog"]
    assert backend.count_completed("vision") == 9
    assert {t.task_id: (t.labeled_items, t.annotations) for t in backend.tasks("vision")} == {
        "t1": (3, 9)
    }


def test_a_wrong_token_is_named(studio, tmp_path):
    url, _, _ = studio
    lake = LocalLake(root=str(tmp_path / "lake"))
    backend = LabelStudioProject(lake=lake, url=url, token="not-a-token")
    with pytest.raises(LabelingError, match="refused the token"):
        backend.create_task("vision", "t1", image_items(lake, "vision", 1), "image", CLASSES)


def test_a_text_task_round_trips_with_the_prediction_prefilled(studio, tmp_path):
    url, token, _ = studio
    backend = LabelStudioProject(lake=LocalLake(root=str(tmp_path / "lake")), url=url, token=token)
    items = [
        {"item_id": f"t{k}:0", "text": text, "prediction": label, "why": "uncertain"}
        for k, (text, label) in enumerate([("too bussin, loved it", "rotten"), ("mid", "fresh")])
    ]
    backend.create_task("nlp", "n1", items, "text", ["fresh", "rotten"])
    project_id = backend.manifest("nlp", "n1")["label_studio_project"]
    tasks = sorted(
        rest(studio, "GET", f"/api/projects/{project_id}/tasks/", params={"page_size": 10}),
        key=lambda t: t["data"]["item_id"],
    )
    assert [t["data"]["text"] for t in tasks] == ["too bussin, loved it", "mid"]
    prefilled = [t["predictions"][0]["result"][0] for t in tasks]
    assert [(p["to_name"], p["value"]["choices"]) for p in prefilled] == [
        ("text", ["rotten"]),
        ("text", ["fresh"]),
    ]
    truth = {"t0:0": "fresh", "t1:0": "rotten"}
    assert (
        SimulatedAnnotator(lambda item: truth[item["item_id"]], ["os:ana"]).complete(backend, "nlp")
        == 2
    )
    labels = backend.annotations("nlp").set_index("item_id")["label"].to_dict()
    assert labels == truth  # the annotator's choices, not the prefilled predictions
