"""The scoring request path shared by `POST /score` (Azure ML) and `/invocations` (MLflow).

Order of checks, cheapest first: request id, key (401), event date (403 without
the replay key, 400, 422 outside the window; `serving.replay`), deployment (404 for
an unknown pinned name), then `serving.inputs`: content type (415), body size (413)
and time (408), JSON or CSV (400), shape, output and signature (400). Then the model
(500 if it raises on valid input), the inference log row (the answer waits until it
is durable; 503 if it cannot be written), and the answer: a JSON list for /score (as
Azure ML returns for an MLflow model), `{"predictions": [...]}` for /invocations (as
`mlflow models serve` does).

Image models (`serving.scoring.image_model`): images are decoded off the event loop
(`serving.inputs`); the log row names each image by digest with its statistics, and the
writer stores the distinct bytes under `images/` before the row (`serving.collector`), so
the answer still waits for both to be durable. A mirror deployment with the same image
spec reuses the live request's decoded pixels; one with another spec decodes its own.

Text models (`serving.scoring.text_model`): the model answers each text with its
monitoring values (tokens, oov_rate, emb_*) in the same call; the client gets the
answers only, the log row's `inputs` the truncated texts with `chars` and those values.
A mirror logs its own model's values, so it always builds its own `inputs`.

Every answer names what served it: `azureml-model-deployment` (as Azure ML does) and
`x-mlops-model` (model name and registry version, `serving.labels`).

Design constraints: no pandas and no per-value Python work on the JSON path; one
orjson parse, one `Table`, one set of typed columns per request. Every failure path
returns the JSON error body of `serving.errors`; nothing a client sends can
produce a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from serving.batching import ModelError
from serving.collector import LogWriteError
from serving.errors import ApiError, error_response
from serving.inputs import ParsedRequest, read_request
from serving.replay import event_date as replay_date
from serving.runtime import Deployment, Runtime
from serving.scoring.errors import InputError
from serving.scoring.model import PROBABILITIES
from serving.scoring.text_model import TextBatch, split_scores
from serving.state import ServerState

Format = Literal["azureml", "mlflow"]
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
_DUMP = orjson.OPT_SERIALIZE_NUMPY


def _row(
    runtime: Runtime,
    deployment: Deployment,
    request_id: str,
    received: float,
    result: dict[str, Any],
    inputs: dict[str, Any],
    mirror: bool,
    event_date: str | None = None,
) -> tuple[str, bytes]:
    """One inference-log line; `result` holds status, latency_ms, outputs, error and extras."""
    when = datetime.fromtimestamp(received, UTC)
    day = event_date or when.strftime("%Y-%m-%d")
    row = {
        "request_id": request_id,
        "timestamp": when.isoformat(),
        "endpoint": runtime.settings.endpoint,
        "deployment": deployment.name,
        "model_name": deployment.settings.model_name,
        "model_version": deployment.settings.model_version,
        "mirror": mirror,
        "inputs": inputs,
        **result,
        "event_date": day,
    }
    return day, orjson.dumps(row, option=_DUMP, default=str) + b"\n"


async def _mirror(
    state: ServerState,
    runtime: Runtime,
    name: str,
    parsed: ParsedRequest,
    request_id: str,
    event_date: str | None,
) -> None:
    """Score a copy on another deployment; log it, count it, discard the answer."""
    deployment = runtime.deployments[name]
    model, table = deployment.model, parsed.table
    received, started = time.time(), time.perf_counter()
    outputs, error, status = None, None, 200
    # What the live row logged (never image bytes), unless this copy decodes its own images
    # or scores texts (its own model's monitoring values).
    inputs, blobs = parsed.log_inputs(), None
    texts: TextBatch | None = None  # set for a text model: its own log columns
    try:
        if model.text is not None:  # truncation follows this model's max_chars
            texts = parsed.texts
            if texts is None or texts.spec != model.text:
                texts = model.decode_texts(table)
            arrays, inputs = {model.text.column: texts.array}, texts.log(None)
        elif model.image is None:
            arrays = model.schema.to_arrays(table)
        else:
            images = parsed.images
            if images is None or images.spec != model.image:
                loop = asyncio.get_running_loop()
                images = await loop.run_in_executor(state.decoder, model.decode_images, table)
            arrays, inputs, blobs = {model.image.column: images.pixels}, images.log, images.blobs
        outputs = await deployment.batcher.predict(arrays, table.nrows)
        if texts is not None:
            outputs, monitor = split_scores(outputs)
            inputs = texts.log(monitor)
    except InputError as exc:
        status, error = 400, exc.message
    except ModelError as exc:
        status, error = 500, str(exc)
    except RuntimeError as exc:  # the decoder was shut down: the server is stopping
        status, error = 503, f"decoding is unavailable: {exc}"
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    result = {"status": status, "latency_ms": latency_ms, "outputs": outputs, "error": error}
    day, line = _row(runtime, deployment, request_id, received, result, inputs, True, event_date)
    with contextlib.suppress(LogWriteError):  # nobody waits on a mirrored copy
        runtime.writer.append_nowait(day, line, blobs)
    state.metrics.observe_mirror(name, status)


def _authorize(runtime: Runtime, header: str | None) -> None:
    if not runtime.authorized(header):
        raise ApiError(
            401,
            "unauthorized",
            "send 'Authorization: Bearer <key>' with one of the endpoint's keys",
            {"www-authenticate": "Bearer"},
        )


async def score(request: Request, state: ServerState, fmt: Format) -> Response:
    """Answer one scoring request (never raises)."""
    started, received = time.perf_counter(), time.time()
    runtime = state.runtime  # one snapshot for the whole request (see serving.runtime)
    headers = request.headers
    request_id = headers.get("x-request-id") or str(uuid.uuid4())
    reply_headers = {"x-request-id": request_id}
    deployment: Deployment | None = None
    pinned: str | None = None
    event_date: str | None = None
    try:
        if not _REQUEST_ID.fullmatch(request_id):
            reply_headers["x-request-id"] = request_id = str(uuid.uuid4())
            raise ApiError(
                400, "invalid_request_id", "x-request-id must be 1-128 printable ASCII characters"
            )
        _authorize(runtime, headers.get("authorization"))
        event_date = replay_date(runtime.settings, headers)  # 403/400/422 (serving.replay)
        pinned = headers.get("azureml-model-deployment")
        deployment = runtime.resolve(pinned, request_id)
        reply_headers.update(deployment.headers)
        parsed = await read_request(
            request, runtime.settings, deployment, fmt == "mlflow", state.decoder
        )
    except (ApiError, InputError) as exc:
        status = exc.status if isinstance(exc, ApiError) else 400
        if isinstance(exc, ApiError):
            reply_headers.update(exc.headers)
        state.metrics.observe(
            deployment.name if deployment else "", status, time.perf_counter() - started
        )
        return error_response(status, exc.code, exc.message, reply_headers)
    reply_headers.update(parsed.headers())
    table = parsed.table

    if not pinned:  # as in Azure ML, a request pinned to a deployment is not mirrored
        for name in runtime.router.mirrors(request_id, deployment.name):
            state.spawn(_mirror(state, runtime, name, parsed, request_id, event_date))

    outputs, answer, error, status = None, None, None, 200
    monitor = None  # a text model's monitoring values, for the log only
    try:
        answer = outputs = await deployment.batcher.predict(
            parsed.arrays, table.nrows, parsed.output
        )
    except ModelError as exc:
        status, error = 500, str(exc)
    if parsed.texts is not None and outputs is not None:
        answer, monitor = split_scores(outputs)
        outputs = answer
    result: dict[str, Any] = {"status": status, "outputs": outputs, "error": error}
    if parsed.output == PROBABILITIES and outputs is not None:
        result["outputs"] = [label for label, _ in outputs]  # monitoring reads the labels
        answer = result["probabilities"] = [probs for _, probs in outputs]
    if parsed.ignored:
        result["ignored_columns"] = parsed.ignored
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    inputs = parsed.log_inputs(monitor)
    day, line = _row(runtime, deployment, request_id, received, result, inputs, False, event_date)
    try:
        await runtime.writer.append(day, line, parsed.images.blobs if parsed.images else None)
    except LogWriteError as exc:
        status, error = 503, f"the inference log is unavailable: {exc}"
    state.metrics.observe(deployment.name, status, time.perf_counter() - started)
    if status == 503:
        return error_response(503, "inference_log_unavailable", error or "", reply_headers)
    if status == 500:
        return error_response(
            500, "model_error", f"the model failed on valid input: {error}", reply_headers
        )
    body = answer if fmt == "azureml" else {"predictions": answer}
    return Response(
        orjson.dumps(body, option=_DUMP, default=str),
        headers=reply_headers,
        media_type="application/json",
    )
