"""One Azure ML `POST /score` request, answered the way the local scoring server answers it.

`Scorer` is what `score.py`'s `init()` builds and `run()` calls; it needs no web framework,
so it is tested in process as well as behind azmlinfsrv. The checks run in the local
server's order and with its own functions (`serving.body`, `serving.inputs`,
`serving.scoring`): method (405), content type (415), body size (413), JSON (400), the
Azure ML shape and output choice (400), then the model's signature, image or text spec
(400), the model (500 `model_error` if it raises on valid input). Answers are the same
bytes: a JSON list of predictions, or the `{"error": {"code", "message"}}` body.

What stays with Azure, not here: keys (the endpoint checks them before the request reaches
the container), traffic split and mirroring (the endpoint's deployments), request ids
(azmlinfsrv answers 431 for one over 100 characters before `run()`), data collection
(Azure ML's collector instead of the local inference log). `/invocations` and CSV bodies
are MLflow's, so Azure ML's `/score` refuses them as the local `/score` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from serving.body import check_content_type, decode_json
from serving.errors import ApiError, error_response
from serving.inputs import requested_output
from serving.scoring.errors import InputError
from serving.scoring.model import PROBABILITIES, ModelLoadError, ServedModel
from serving.scoring.parsing import parse_azureml
from serving.scoring.text_model import split_scores

MODEL_DIR_ENV = "AZUREML_MODEL_DIR"  # set by Azure ML (and by azmlinfsrv's --model_dir)
MAX_BODY_ENV = "MLOPS_MAX_BODY_BYTES"  # the local config's max_body_bytes
_DUMP = orjson.OPT_SERIALIZE_NUMPY
_CHUNK = 64 << 10
_SEARCH_DEPTH = 3  # <dir>/MLmodel, <dir>/<model>/MLmodel, <dir>/<name>/<version>/MLmodel


def find_model(root: str | Path) -> Path:
    """The one MLflow model folder under `root`, where Azure ML put it.

    Azure ML mounts a registered model's files under `AZUREML_MODEL_DIR` in a folder named
    after what was registered (`<dir>/<model>/MLmodel`); older layouts add name and version
    levels. The shallowest level holding an MLmodel file wins; two there is an error."""
    base = Path(root)
    if not base.is_dir():
        raise ModelLoadError(f"{MODEL_DIR_ENV}={str(root)!r} is not a directory")
    for depth in range(_SEARCH_DEPTH):
        found = sorted(base.glob("/".join(["*"] * depth + ["MLmodel"])))
        if len(found) == 1:
            return found[0].parent
        if found:
            names = [str(p.parent.relative_to(base)) for p in found]
            raise ModelLoadError(
                f"{base} holds {len(found)} MLflow models {names}; deploy one model per deployment"
            )
    raise ModelLoadError(
        f"no MLmodel file in {base} or {_SEARCH_DEPTH - 1} folder levels below it; "
        "register the MLflow model folder (the one holding MLmodel) as the model"
    )


@dataclass(frozen=True, slots=True)
class Request:
    """What `run()` needs from azmlinfsrv's request: no web framework in this module."""

    method: str
    content_type: str | None
    content_length: int | None  # as declared; None for a chunked body
    read: Callable[[int], bytes]  # the body stream's read(n); b"" at its end
    output: str | None = None  # the `?output=` query parameter


@dataclass(frozen=True, slots=True)
class Answer:
    """Status, JSON body and headers; `Content-Type` spelled so, as azmlinfsrv's
    `AMLResponse` drops its own text/html default only for that exact key."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _error(exc: ApiError | InputError) -> Answer:
    status, headers = (exc.status, exc.headers) if isinstance(exc, ApiError) else (400, {})
    # WSGI forbids hop-by-hop headers (serving.body's `connection: close`); gunicorn's sync
    # worker, the one azmlinfsrv runs, closes every connection after its answer anyway
    headers = {k: v for k, v in headers.items() if k.lower() != "connection"}
    body = bytes(error_response(status, exc.code, exc.message).body)
    return Answer(status, body, {"Content-Type": "application/json", **headers})


def _too_large(limit: int, size: int | None) -> ApiError:
    """The 413 as `serving.body` words it."""
    what = f"the body is {size} bytes" if size is not None else f"the body exceeds {limit} bytes"
    message = f"{what}; this endpoint accepts at most {limit}"
    return ApiError(413, "payload_too_large", message)


def read_body(request: Request, limit: int, drain_bytes: int) -> bytes:
    """The body, at most `limit` bytes; a larger one is read and discarded up to
    `drain_bytes` first, so a client that writes its whole body sees the 413."""
    declared = request.content_length
    if declared is not None and declared > max(limit, drain_bytes):
        raise _too_large(limit, declared)
    chunks: list[bytes] = []
    size = 0
    while chunk := request.read(_CHUNK):
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > drain_bytes:
            raise _too_large(limit, declared)
    if size > limit:
        raise _too_large(limit, size)
    return b"".join(chunks)


class Scorer:
    """One loaded model and the local server's limits; `answer` raises for no client mistake."""

    def __init__(self, model: ServedModel, max_body_bytes: int, max_drain_bytes: int) -> None:
        self.model = model
        self.max_body_bytes = max_body_bytes
        self.max_drain_bytes = max_drain_bytes

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Scorer:
        """The model under `AZUREML_MODEL_DIR`; limits default to the local server's."""
        from serving.settings import ServingSettings  # its defaults are the limits' defaults

        fields = ServingSettings.model_fields
        root = environ.get(MODEL_DIR_ENV)
        if not root:
            raise ModelLoadError(f"{MODEL_DIR_ENV} is not set; Azure ML sets it to the model")
        limit = environ.get(MAX_BODY_ENV, str(fields["max_body_bytes"].default))
        if not (limit.isascii() and limit.isdigit()) or int(limit) <= 0:
            raise ValueError(f"{MAX_BODY_ENV} must be a positive number of bytes, got {limit!r}")
        drain = max(int(limit), fields["max_drain_bytes"].default)
        return cls(ServedModel(find_model(root)), int(limit), drain)

    def _arrays(self, body: bytes, query_output: str | None) -> tuple[dict[str, Any], int, str]:
        """Typed columns, row count and output, as `serving.inputs.read_request` builds them
        for `/score` (unknown columns refused, not ignored)."""
        table = parse_azureml(decode_json(body))
        output = requested_output(table.params, query_output)
        model = self.model
        if output == PROBABILITIES and not model.probabilities:
            raise InputError(
                "unsupported_output",
                "this deployment serves a model without class probabilities "
                f"(flavor {model.flavor}); ask for output 'predictions'",
            )
        if model.text is not None:
            return {model.text.column: model.decode_texts(table).array}, table.nrows, output
        if model.image is None:
            return model.schema.to_arrays(table), table.nrows, output
        return {model.image.column: model.decode_images(table).pixels}, table.nrows, output

    def answer(self, request: Request) -> Answer:
        try:
            if request.method != "POST":
                message = f"{request.method} /score: Method Not Allowed"
                raise ApiError(405, "method_not_allowed", message, {"allow": "POST"})
            check_content_type(request.content_type)
            body = read_body(request, self.max_body_bytes, self.max_drain_bytes)
            arrays, nrows, output = self._arrays(body, request.output)
        except (ApiError, InputError) as exc:
            return _error(exc)
        try:
            outputs = self.model.predict(arrays, nrows, output)
        except Exception as exc:  # valid input: the model's failure (serving.batching's words)
            failed = f"the model failed on valid input: {type(exc).__name__}: {exc}"
            return _error(ApiError(500, "model_error", failed))
        answer: Any = outputs
        if self.model.text is not None:  # the monitoring values are for a log, not the client
            answer, _ = split_scores(outputs)
        elif output == PROBABILITIES:
            answer = [probs for _, probs in outputs]
        body = orjson.dumps(answer, option=_DUMP, default=str)
        return Answer(200, body, {"Content-Type": "application/json"})
