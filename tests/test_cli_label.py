"""`mlops label list|annotate`: labeling in the terminal, driven through stdin.

Protects: an image item is shown as block art from the lake's bytes with the
model's prediction as the suggestion and the classes; Enter accepts it, a number or
a class name labels, `s` skips, `q` and end of input quit, a wrong answer is asked
again; every answer is recorded at once under the caller's identity from the
environment (never a flag); `--review` decisions are recorded as reviews; `list`
shows progress and what is still yours; a misconfigured backend is exit 1 naming
what is missing. Also run as a real process with a piped stdin.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import resources.identity
from mlops_cli import main
from mlops_cli.labeling import parse_answer
from resources.labeling import LocalLabelingProject
from resources.lake import LocalLake

CLASSES = ["cat", "dog", "7"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    for var in ("MLOPS_ENV", "MLOPS_LABELING"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(resources.identity, "os_account", lambda: "alice")
    return tmp_path


def project(home) -> LocalLabelingProject:
    return LocalLabelingProject(lake=LocalLake(root=str(home / "lake")))  # local_resources' lake


def image_task(home, n: int = 3) -> LocalLabelingProject:
    labeling, items = project(home), []
    for k in range(n):
        pixels = np.zeros((16, 16), dtype=np.uint8)
        pixels[4:12, 4 + k : 8 + k] = 255  # a bright bar, a little further right each time
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        digest = hashlib.sha256(buf.getvalue()).hexdigest()
        labeling.lake.write_bytes(f"monitoring/vision/images/{digest}", buf.getvalue())
        items.append(
            {
                "item_id": f"r{k}:0",
                "image": f"sha256:{digest}",
                "prediction": "cat",
                "why": "uncertain",
            }
        )
    labeling.create_task("vision", "t1", items, "image", CLASSES)
    return labeling


def label(capsys, monkeypatch, answers: str, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    code = main(["label", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("\n", ("label", "cat")),
        ("2\n", ("label", "dog")),
        ("dog\n", ("label", "dog")),
        ("7\n", ("label", "7")),
        ("3\n", ("label", "7")),
        (" s \n", ("skip", None)),
        ("q\n", ("quit", None)),
        ("9\n", ("invalid", None)),
        ("cow\n", ("invalid", None)),
    ],
)
def test_answers(line, expected):
    kind, value = parse_answer(line, {"classes": CLASSES, "prediction": "cat"})
    assert (kind, value if kind != "invalid" else None) == expected
    assert parse_answer("\n", {"classes": CLASSES, "prediction": "cow"})[0] == "invalid"


def test_annotate_shows_images_and_records_answers_as_the_caller(home, capsys, monkeypatch):
    labeling = image_task(home)
    code, out, err = label(capsys, monkeypatch, "\nwolf\n2\ns\n", "annotate", "vision")
    assert code == 0, err
    assert "[1/3] task t1  item r0:0" in out and "█" in out  # the bright bar as blocks
    assert "classes: 1) cat  2) dog  3) 7" in out and "suggested: cat" in out
    assert "'wolf' is not a class" in out  # asked again, then answered 2
    assert "labeled" in out and "skipped" in out
    frame = labeling.annotations("vision").sort_values("item_id")
    assert frame[["item_id", "label", "annotator"]].values.tolist() == [
        ["r0:0", "cat", "os:alice"],
        ["r1:0", "dog", "os:alice"],
    ]
    code, out, _ = label(capsys, monkeypatch, "", "annotate", "vision", "-o", "json")
    assert json.loads(out[out.index("{") :])["left"] == 1  # end of input quits; r2:0 is left

    code, out, _ = label(capsys, monkeypatch, "", "list", "vision", "-o", "json")
    [row] = json.loads(out)
    assert (row["items"], row["labeled"], row["yours_pending"], row["status"]) == (3, 2, 1, "open")
    monkeypatch.setattr(resources.identity, "os_account", lambda: "bob")
    code, out, _ = label(capsys, monkeypatch, "", "list", "vision", "-o", "json")
    assert json.loads(out)[0]["yours_pending"] == 3


def test_a_text_item_shows_its_text_not_its_logged_statistics(home, capsys, monkeypatch):
    labeling = project(home)
    item = {
        "item_id": "q0:0", "text": "too bussin, a great flick", "prediction": "fresh",
        "why": "uncertain", "tokens": 7, "oov_rate": 0.4, "emb_0": 0.123,
    }  # fmt: skip
    labeling.create_task("nlp", "n1", [item], "text", ["fresh", "rotten"])
    code, out, err = label(capsys, monkeypatch, "2\n", "annotate", "nlp")
    assert code == 0, err
    assert "too bussin, a great flick" in out and "suggested: fresh" in out
    assert "emb_0" not in out and "oov_rate" not in out
    assert labeling.annotations("nlp")["label"].tolist() == ["rotten"]


def test_review_mode_decides_held_out_items(home, capsys, monkeypatch):
    labeling = image_task(home, n=2)
    labeling.annotate(
        "vision",
        [
            {"item_id": "r0:0", "label": "cat", "annotator": "ana"},
            {"item_id": "r0:0", "label": "dog", "annotator": "ben"},
        ],
    )
    labeling.set_review(
        "vision", [{"item_id": "r0:0", "votes": "cat=1,dog=1", "agreement": 0.5}], 0.67
    )
    code, out, err = label(capsys, monkeypatch, "dog\n", "annotate", "vision", "--review")
    assert code == 0, err
    assert "[1/1]" in out and "votes: cat=1,dog=1 (agreement 0.5)" in out
    reviewed = labeling.annotations("vision").query("reviewed")
    assert reviewed[["item_id", "label", "annotator"]].values.tolist() == [
        ["r0:0", "dog", "os:alice"]
    ]
    assert labeling.review_items("vision") == []


def test_a_misconfigured_backend_is_a_refusal(home, capsys, monkeypatch):
    monkeypatch.setenv("MLOPS_LABELING", "label-studio")
    for var in ("MLOPS_LABEL_STUDIO_URL", "MLOPS_LABEL_STUDIO_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    code, _, err = label(capsys, monkeypatch, "", "list", "vision")
    assert code == 1 and "MLOPS_LABEL_STUDIO_URL" in err and "MLOPS_LABEL_STUDIO_TOKEN" in err
    monkeypatch.setenv("MLOPS_LABELING", "crowd")
    code, _, err = label(capsys, monkeypatch, "", "list", "vision")
    assert code == 1 and "MLOPS_LABELING='crowd'" in err


def test_annotate_as_a_process_with_piped_answers(home):
    labeling = image_task(home, n=2)
    env = {**os.environ, "MLOPS_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "mlops_cli", "label", "annotate", "vision", "--task", "t1"],
        input="1\n2\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "saved: cat" in done.stdout and "saved: dog" in done.stdout
    assert labeling.annotations("vision")["label"].tolist() == ["cat", "dog"]
