"""The Azure ML entry script (`score.py`): `init()` loads the model, `run()` answers `/score`.

Point a deployment's `code_configuration` at a copy of the repository (or of `serving/`)
with `scoring_script: serving/azureml/score.py`, in an environment holding
`azureml-inference-server-http` and the model's own requirements. azmlinfsrv loads this
file by path, not as a package, so the folder holding `serving/` goes on `sys.path` first.

`run` is `@rawhttp`: it gets the Flask request (method, headers, body stream, query) and
answers an `AMLResponse` with the status and JSON body `serving.azureml.contract` chose, so
a client mistake is a 4xx naming it, not the 500 an exception in `run` would become.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from azureml_inference_server_http.api.aml_request import AMLRequest, rawhttp  # noqa: E402
from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402

from serving.azureml.contract import Request, Scorer  # noqa: E402

_scorer: Scorer | None = None


def init() -> None:
    """Load the model under AZUREML_MODEL_DIR (azmlinfsrv calls this once per worker)."""
    global _scorer
    _scorer = Scorer.from_env(os.environ)


@rawhttp
def run(request: AMLRequest) -> AMLResponse:
    if _scorer is None:
        raise RuntimeError("init() has not run: azmlinfsrv calls it before any request")
    answer = _scorer.answer(
        Request(
            method=request.method,
            content_type=request.headers.get("content-type"),
            content_length=request.content_length,
            read=request.stream.read,
            output=request.args.get("output"),
        )
    )
    return AMLResponse(answer.body, answer.status, answer.headers)
