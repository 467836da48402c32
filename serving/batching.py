"""Cross-request micro-batching for one deployment's model.

Why: an sklearn pipeline spends ~2-3 ms per `predict` call on pandas indexing and
checks whether it scores 1 row or 1000, so concurrent requests share model calls.

Design constraints:
- No timer and no added latency: at most one batch per deployment is in flight;
  requests that arrive meanwhile wait and form the next batch, so a lone request
  is scored at once and a busy endpoint batches by itself.
- The model runs on a worker thread, so the event loop keeps reading sockets,
  answering /health and /metrics, and batching while a model call runs.
- One bad request must not fail its neighbours: if a batched call raises, each
  request in it is scored alone and only the failing ones get the error.
- A batch holds requests for one output (predictions or probabilities, see
  `serving.scoring.model`); the queue keeps arrival order, so a request asking for
  the other output starts the next batch.
- The drain task exists only while work is queued, so a batcher dropped by a
  config reload needs no shutdown: it finishes its queue and is garbage.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from serving.scoring.model import PREDICTIONS, Arrays, ServedModel


class ModelError(RuntimeError):
    """The model raised while scoring input that passed validation."""


_Item = tuple[Arrays, int, str, "asyncio.Future[list[Any]]"]


class MicroBatcher:
    """Queues validated requests for one model and scores them in shared calls."""

    def __init__(self, model: ServedModel, executor: Executor, max_rows: int) -> None:
        self.model = model
        self.max_rows = max_rows
        self.batches = 0
        self.rows = 0
        self._executor = executor
        self._queue: list[_Item] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None

    async def predict(self, arrays: Arrays, nrows: int, output: str = PREDICTIONS) -> list[Any]:
        """Predictions (or `output`) for one request (raises `ModelError`)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append((arrays, nrows, output, fut))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())  # keep a reference
        return await fut

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch = self._take()
                items = [(arrays, nrows) for arrays, nrows, _, _ in batch]
                output = batch[0][2]
                try:
                    results = await loop.run_in_executor(self._executor, self._score, items, output)
                except asyncio.CancelledError:  # server shutdown: nobody waits forever
                    stop = ModelError("the server is shutting down")
                    for *_, fut in batch + self._queue:
                        _resolve(fut, stop)
                    self._queue = []
                    raise
                except RuntimeError as exc:  # the executor was shut down
                    results = [ModelError(f"scoring is unavailable: {exc}")] * len(batch)
                for (*_, fut), result in zip(batch, results, strict=True):
                    _resolve(fut, result)
        finally:
            self._draining = False

    def _take(self) -> list[_Item]:
        taken, rows, output = 0, 0, self._queue[0][2]
        for _, nrows, kind, _ in self._queue:
            if taken and (rows + nrows > self.max_rows or kind != output):
                break
            taken += 1
            rows += nrows
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        self.batches += 1
        self.rows += rows
        return batch

    def _score(self, items: list[tuple[Arrays, int]], output: str) -> list[list[Any] | ModelError]:
        """Runs on the worker thread."""
        try:
            return list(self.model.predict_arrays(items, output))
        except Exception as exc:
            if len(items) == 1:
                return [_model_error(exc)]
        results: list[list[Any] | ModelError] = []
        for arrays, nrows in items:
            try:
                results.append(self.model.predict(arrays, nrows, output))
            except Exception as exc:
                results.append(_model_error(exc))
        return results


def _model_error(exc: Exception) -> ModelError:
    error = ModelError(f"{type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _resolve(fut: asyncio.Future[list[Any]], result: list[Any] | BaseException) -> None:
    if fut.done():  # the request went away
        return
    if isinstance(result, BaseException):
        fut.set_exception(result)
    else:
        fut.set_result(result)
