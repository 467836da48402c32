"""Reading one scoring request: content type, body, payload shape, and the output it asks for.

`read_request` runs the request checks that need the body, in the order `serving.handlers`
documents (content type 415, body size 413 and time 408, JSON or CSV 400, shape, output
and signature 400), and returns a `ParsedRequest` whose columns are ready for the model.

MLflow compatibility (`/invocations` only, as `mlflow models serve` does):
- `text/csv` bodies (header row = column names; `serving.scoring.csv_input`);
- columns the model's signature does not name are ignored, not refused; the answer lists
  them in `x-mlops-ignored-columns` (a JSON array) and the inference log in
  `ignored_columns`. `/score` keeps refusing them (400 `unexpected_column`).

Image models (`serving.scoring.image_model`): the `image` column's base64 and image
decoding run on the `decoder` executor, never on the event loop (an image's decode cost
follows the pixels it declares, not its encoded size); the request then carries pixels
for the model, and digests, statistics and bytes for the inference log.

Text models (`serving.scoring.text_model`): the texts are checked and truncated to the
model's `max_chars` inline (a type check, a length and a slice per text, at most
`max_texts` of them). The log's `inputs` for a text request need the monitoring values
the model returns with its answers, so `ParsedRequest.log_inputs(monitor)` takes them.

Output: `predictions` (the model's `predict`, the default) or `probabilities` (one object
per row mapping each class to its probability, what a DataFrame-returning MLflow model
answers), chosen with `params: {"output": "probabilities"}` in the JSON body (MLflow's and
Azure ML's `params`) or `?output=probabilities` (for CSV bodies, which carry no params).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from serving.body import check_content_type, decode_json, read_body
from serving.labels import names_header
from serving.runtime import Deployment
from serving.scoring.csv_input import parse_csv
from serving.scoring.errors import InputError
from serving.scoring.image_model import ImageBatch
from serving.scoring.model import OUTPUTS, PREDICTIONS, PROBABILITIES, Arrays
from serving.scoring.parsing import Table, parse_azureml, parse_mlflow
from serving.scoring.text_model import TextBatch
from serving.settings import ServingSettings

IGNORED_HEADER = "x-mlops-ignored-columns"
CSV_INLINE_BYTES = 64 << 10  # larger CSV bodies are parsed on a thread


@dataclass(slots=True)
class ParsedRequest:
    """A parsed scoring request: its table, typed arrays and requested output."""

    table: Table
    arrays: Arrays
    output: str
    ignored: list[str]
    images: ImageBatch | None = None  # an image model's request, decoded
    texts: TextBatch | None = None  # a text model's request, checked and truncated

    def headers(self) -> dict[str, str]:
        return {IGNORED_HEADER: names_header(self.ignored)} if self.ignored else {}

    def log_inputs(self, monitor: list[tuple[Any, ...]] | None = None) -> dict[str, Any]:
        """The inference log's `inputs`: the columns as sent, image digests and stats, or
        texts as scored with their length and `monitor` (a text model's monitoring values
        per text, `text_model.split_scores`; None: the model gave none)."""
        if self.texts is not None:
            return self.texts.log(monitor)
        if self.images is not None:
            return self.images.log
        return table_inputs(self.table)


def table_inputs(table: Table) -> dict[str, Any]:
    return {"columns": table.columns, "data": table.log_rows()}


def requested_output(params: dict[str, Any] | None, query: str | None) -> str:
    """`predictions` unless the body's params or the query ask for `probabilities`."""
    given = (params or {}).get("output")
    if given is not None and query is not None and given != query:
        raise InputError(
            "invalid_param",
            f"params.output is {given!r} but the query asks for output={query!r}; send one",
        )
    output = given if given is not None else query
    if output is None:
        return PREDICTIONS
    if output not in OUTPUTS:
        raise InputError("invalid_param", f"output must be one of {list(OUTPUTS)}, got {output!r}")
    return output


async def read_request(
    request: Request,
    limits: ServingSettings,
    deployment: Deployment,
    mlflow: bool,
    decoder: Executor | None = None,
) -> ParsedRequest:
    """Read, parse and check one request for `deployment` (raises ApiError or InputError);
    an image model's images are decoded on `decoder` (None: asyncio's default executor)."""
    kind = check_content_type(request.headers.get("content-type"), csv=mlflow)
    body = await read_body(
        request, limits.max_body_bytes, limits.max_drain_bytes, limits.body_timeout_s
    )
    schema = deployment.model.schema
    if kind == "csv" and len(body) <= CSV_INLINE_BYTES:
        table = parse_csv(body, schema)
    elif kind == "csv":  # typing CSV is Python work per value: keep the event loop answering
        table = await asyncio.to_thread(parse_csv, body, schema)
    else:
        payload = decode_json(body)
        table = parse_mlflow(payload) if mlflow else parse_azureml(payload)
    output = requested_output(table.params, request.query_params.get("output"))
    if output == PROBABILITIES and not deployment.model.probabilities:
        raise InputError(
            "unsupported_output",
            f"deployment '{deployment.name}' serves a model without class probabilities "
            f"(flavor {deployment.model.flavor}); ask for output 'predictions'",
        )
    ignored = schema.unknown(table) if mlflow else []
    if ignored:
        table = table.drop(ignored)
    model = deployment.model
    if model.text is not None:
        texts = model.decode_texts(table)
        return ParsedRequest(table, {model.text.column: texts.array}, output, ignored, texts=texts)
    if model.image is None:
        return ParsedRequest(table, schema.to_arrays(table), output, ignored)
    loop = asyncio.get_running_loop()
    images = await loop.run_in_executor(decoder, model.decode_images, table)
    return ParsedRequest(table, {model.image.column: images.pixels}, output, ignored, images)
