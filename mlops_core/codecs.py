"""Serving codecs: how items become requests and logged requests become rows again.

The tabular codec speaks Azure ML's `{"input_data": {"columns", "index", "data"}}`;
an image or text codec (vision, NLP) fills the same `ServingCodec` fields with
base64 images or strings, and the generic staging, monitoring and labeling
stages use whichever the spec carries.
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
