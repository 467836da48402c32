"""Table output says what the data says: a false value is printed false, a version
says which registry it is in.

Protects against tabulate's column wrapping, which casts the strings "True" and
"False" with bool(); `mlops audit --verify -o table` once printed `intact True`
for a broken trail. And against versions shown without their registry, or with an
MLflow 3 `models:/m-...` indirection where people expect `models:/<name>/<version>`.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlops_cli.output import logged_model_id, render_table, version_label


def cells(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()[2:]]


def test_booleans_in_a_field_table_keep_their_value():
    assert cells(render_table({"intact": False, "records": 2})) == [
        ["intact", "false"],
        ["records", "2"],
    ]


def test_booleans_in_a_row_table_keep_their_value():
    assert cells(render_table([{"running": False, "ready": True}])) == [["false", "true"]]


@pytest.mark.parametrize(
    ("stage", "tags", "label"),
    [("dev", {}, "dev v4"), ("prod", None, "prod v4"),
     ("prod", {"mlops.source_version": "3"}, "prod v4 (from dev v3)"),
     ("prod", {"mlops.source_version": "3", "mlops.source_stage": "qa"}, "prod v4 (from qa v3)")],
)  # fmt: skip
def test_a_version_label_names_its_registry_and_where_it_was_promoted_from(stage, tags, label):
    assert version_label(stage, 4, tags) == label


M = "m-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("model_id", "source", "artifact_uri", "expected"),
    [(M, "file:///x", None, M), (None, f"models:/{M}", f"file:///a/1/models/{M}/artifacts", M),
     (None, f"file:///a/1/models/{M}/artifacts", None, M),
     (None, "file:///a/1/3f2a/artifacts/model", None, None), (None, "models:/m-x/3", None, None)],
)  # fmt: skip
def test_the_logged_model_id_is_read_off_the_version(model_id, source, artifact_uri, expected):
    mv = SimpleNamespace(model_id=model_id, source=source)
    assert logged_model_id(mv, artifact_uri) == expected
