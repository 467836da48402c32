"""Serving codecs: how items become requests and logged requests become rows again.

The tabular codec speaks Azure ML's `{"input_data": {"columns", "index", "data"}}`;
an image or text codec (vision, NLP) fills the same `ServingCodec` fields with
base64 images or strings, and the generic staging, monitoring and labeling
stages use whichever the spec carries. A text request logs its truncated texts with their
statistics (`serving.scoring.text_model`), never anything beyond the model's `max_chars`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_core.probes import azureml_payload, bad_input_cases
from mlops_core.spec import ServingCodec

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd


def tabular_rows(inputs: dict[str, Any]) -> pd.DataFrame:
    """A logged Azure ML request body's `input_data` as one row per scored input row."""
    import pandas as pd

    return pd.DataFrame(inputs["data"], columns=inputs["columns"])


def tabular_codec(request_frame: Callable[[pd.DataFrame], pd.DataFrame]) -> ServingCodec:
    """Rows of named columns; `request_frame` keeps what a client sends of a holdout frame."""
    return ServingCodec(
        kind="tabular",
        request_batch=request_frame,
        payload=azureml_payload,
        log_rows=tabular_rows,
        bad_inputs=bad_input_cases,
    )


def image_rows(inputs: dict[str, Any]) -> pd.DataFrame:
    """A logged image request: the image's digest and statistics per item (never the bytes)."""
    return tabular_rows(inputs)


def label_outputs(outputs: list) -> dict[str, list]:
    """{label, probability} answers as the served label and its confidence."""
    return {
        "prediction": [o["label"] for o in outputs],
        "confidence": [o["probability"] for o in outputs],
    }


def image_bad_inputs(frame: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    """Named client mistakes for an `image` column; each must get a 4xx, never a 5xx."""
    import base64
    import io
    import json

    from PIL import Image

    good = base64.b64decode(frame["image"].iloc[0])
    bomb = io.BytesIO()
    Image.new("L", (5_000, 5_000)).save(bomb, format="PNG")  # 25M pixels in 25 kB: over the cap

    def body(cell: Any, column: str = "image") -> bytes:
        return json.dumps({"input_data": {"columns": [column], "data": [[cell]]}}).encode()

    js = "application/json"
    return {
        "not_base64": (body("this is not base64!"), js),
        "not_an_image": (body(base64.b64encode(b"hello, world").decode()), js),
        "truncated_image": (body(base64.b64encode(good[: len(good) // 2]).decode()), js),
        "decompression_bomb": (body(base64.b64encode(bomb.getvalue()).decode()), js),
        "null_cell": (body(None), js),
        "number_cell": (body(42), js),
        "object_cell": (body({"png": "x"}), js),
        "missing_column": (body("x", column="picture"), js),
        "malformed_json": (b'{"input_data": {"columns": [', js),
        "huge_body": (b'{"input_data": {"data": [' + b"1," * (3 << 20) + b"1]}}", js),
    }


def image_codec(request_frame: Callable[[pd.DataFrame], pd.DataFrame]) -> ServingCodec:
    """Base64 PNG/JPEG in an `image` column; answers are {label, probability} per image."""
    return ServingCodec(
        kind="image",
        request_batch=request_frame,
        payload=azureml_payload,
        log_rows=image_rows,
        bad_inputs=image_bad_inputs,
        log_outputs=label_outputs,
    )


def mask_outputs(outputs: list) -> dict[str, list]:
    """{mask, objects} answers as the object count (`prediction`) and the mask's foreground
    share (`foreground_fraction`, from the decoded PNG); the mask itself is not logged."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    fractions = []
    for o in outputs:
        with Image.open(io.BytesIO(base64.b64decode(o["mask"]))) as mask:
            fractions.append(float((np.asarray(mask.convert("L")) > 127).mean()))
    return {"prediction": [int(o["objects"]) for o in outputs], "foreground_fraction": fractions}


def segmentation_codec(request_frame: Callable[[pd.DataFrame], pd.DataFrame]) -> ServingCodec:
    """Base64 PNG/JPEG in an `image` column; answers are {mask, objects} per image."""
    return ServingCodec(
        kind="image",
        request_batch=request_frame,
        payload=azureml_payload,
        log_rows=image_rows,
        bad_inputs=image_bad_inputs,
        log_outputs=mask_outputs,
    )


def text_rows(inputs: dict[str, Any]) -> pd.DataFrame:
    """A logged text request: the truncated text, its length as sent (`chars`) and the model's
    monitoring values (`tokens`, `oov_rate`, `emb_*`) per text."""
    return tabular_rows(inputs)


TOO_MANY_TEXTS = 10_000  # over any text model's max_texts (default 256), and ~60 kB of body


def text_bad_inputs(frame: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    """Named client mistakes for a `text` column; each must get a 4xx, never a 5xx."""
    import json

    good = str(frame["text"].iloc[0])

    def body(*cells: Any, column: str = "text") -> bytes:
        return json.dumps(
            {"input_data": {"columns": [column], "data": [[c] for c in cells]}}
        ).encode()

    js = "application/json"
    return {
        "null_cell": (body(good, None), js),
        "number_cell": (body(42), js),
        "bool_cell": (body(True), js),
        "object_cell": (body({"text": good}), js),
        "list_cell": (body([good]), js),
        "missing_column": (body(good, column="review"), js),
        # raw bytes that are no UTF-8, inside an otherwise valid JSON string
        "invalid_utf8": (b'{"input_data": {"columns": ["text"], "data": [["bad \xff\xfe"]]}}', js),
        "malformed_json": (b'{"input_data": {"columns": [', js),
        "huge_body": (b'{"input_data": {"data": [' + b"1," * (3 << 20) + b"1]}}", js),
        "too_many_texts": (body(*["x"] * TOO_MANY_TEXTS), js),
    }


def text_codec(request_frame: Callable[[pd.DataFrame], pd.DataFrame]) -> ServingCodec:
    """Strings in a `text` column; answers are {label, probability} per text."""
    return ServingCodec(
        kind="text",
        request_batch=request_frame,
        payload=azureml_payload,
        log_rows=text_rows,
        bad_inputs=text_bad_inputs,
        log_outputs=label_outputs,
    )
