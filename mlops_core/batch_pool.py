"""The local batch endpoint: mini-batches scored by a pool of worker processes.

Why a hand-written pool rather than `ProcessPoolExecutor` or `multiprocessing.Pool`:
a worker that dies (segfault, OOM kill, `os._exit`) breaks the former for every
pending task and silently loses its task in the latter. Here each worker has
its own pipe; the parent waits on the pipes and the process sentinels, so a
death is seen at once, charged to the mini-batch that worker held, and the
worker is replaced while the others keep going.

- Workers start from a `forkserver` (default) or `spawn` context, never `fork`:
  the parent is a Dagster run with threads and locks (MLflow, gRPC, loggers).
  The forkserver (a clean process) imports the job's modules once and forks the
  workers from there, so a worker only loads the model (once, before its first
  mini-batch: the pool's initializer) and runs with one OpenMP thread.
- Retries: a failed, dead or timed-out mini-batch is retried one partition at a
  time (so the one at fault is isolated and named) up to `max_retries` more
  times; after that the run stops, every worker is killed and the temporary
  files of unfinished partitions are deleted. Finished partitions were renamed
  into place whole, unfinished ones have no output at all.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from mlops_core.batch import (
    BatchJob,
    BatchReport,
    BatchSettings,
    MiniBatch,
    MiniBatchFailed,
    plan_mini_batches,
    score_mini_batch,
)


def worker_main(conn: Connection, job: BatchJob) -> None:
    """A worker: load the model once, then score mini-batches until told to stop."""
    os.environ["OMP_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # the forkserver may have loaded OpenMP before the variable was set
    try:
        model = job.load(job.model_dir)
    except Exception:
        conn.send(("fatal", -1, traceback.format_exc(limit=8)))
        return
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent is gone
            return
        if task is None:
            return
        index, partitions = task
        try:
            conn.send(("done", index, score_mini_batch(job, model, partitions)))
        except Exception as err:
            cause = err.__cause__ or err
            reason = f"{type(cause).__name__}: {cause}"
            conn.send(("failed", index, (getattr(err, "partition", None), reason)))


class _Worker:
    def __init__(self, ctx: Any, job: BatchJob) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=worker_main, args=(child, job), daemon=True, name="mlops-batch-worker"
        )
        self.process.start()
        child.close()
        self.batch: MiniBatch | None = None
        self.deadline = 0.0

    def assign(self, batch: MiniBatch, timeout: float) -> None:
        self.conn.send((batch.index, batch.partitions))
        self.batch, self.deadline = batch, time.monotonic() + timeout

    def outcome(self) -> tuple[str, Any] | None:
        """What the held mini-batch came to, or None while it is still running."""
        if self.conn.poll():
            try:
                kind, _, payload = self.conn.recv()
                return kind, payload
            except (EOFError, OSError):
                pass
        elif self.process.is_alive():
            return ("timeout", None) if time.monotonic() > self.deadline else None
        self.process.join(timeout=10)
        return "died", self.process.exitcode

    def stop(self, kill: bool) -> None:
        if kill:
            self.process.kill()
        else:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _failure(kind: str, payload: Any, timeout: int) -> tuple[str | None, str]:
    if kind == "failed":
        return payload
    if kind == "timeout":
        return None, f"timed out after {timeout}s (retry_timeout); worker stopped"
    return None, f"worker process exited with code {payload} while scoring"


class _Run:
    """One batch run: the plan, the workers, what is pending and what is done."""

    def __init__(self, job: BatchJob, settings: BatchSettings, plan: list[MiniBatch], ctx: Any):
        self.job, self.settings, self.ctx = job, settings, ctx
        self.pending = deque(plan)
        self.rows: dict[str, int] = {}
        self.retries = 0
        self.failed: MiniBatch | None = None
        self.workers: list[_Worker] = []

    def loop(self, log: Callable[[str], None]) -> None:
        n = min(self.settings.workers(), len(self.pending))
        self.workers = [_Worker(self.ctx, self.job) for _ in range(n)]
        while self.pending or any(w.batch for w in self.workers):
            for w in self.workers:
                if w.batch is None and self.pending:
                    w.assign(self.pending.popleft(), self.settings.retry_timeout)
            busy = [w for w in self.workers if w.batch]
            deadline = min(w.deadline for w in busy) - time.monotonic()
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy], max(deadline, 0))
            for i, w in enumerate(self.workers):
                batch, result = w.batch, w.outcome() if w.batch else None
                if batch is not None and result is not None:
                    w.batch = None
                    self.settle(i, batch, *result, log=log)

    def settle(
        self, i: int, batch: MiniBatch, kind: str, payload: Any, log: Callable[[str], None]
    ) -> None:
        if kind == "done":
            self.rows.update(payload)
            return
        if kind == "fatal":
            raise RuntimeError(f"a batch worker could not load the model:\n{payload}")
        partition, reason = _failure(kind, payload, self.settings.retry_timeout)
        if kind != "failed":  # dead or hung: replace the process
            self.workers[i].stop(kill=True)
        if batch.failures >= self.settings.max_retries:
            self.failed = batch
            raise MiniBatchFailed(batch, batch.failures + 1, reason, partition)
        if kind != "failed":
            self.workers[i] = _Worker(self.ctx, self.job)
        self.retries += 1
        attempt = f"{batch.failures + 1}/{self.settings.max_retries}"
        log(f"mini-batch {batch.index} ({', '.join(batch.partitions)}) failed: {reason}; "
            f"retry {attempt}, one partition at a time")  # fmt: skip
        singles = [MiniBatch(batch.index, (p,), batch.failures + 1) for p in batch.partitions]
        self.pending.extendleft(reversed(singles))

    def abort(self) -> None:
        """Kill every worker and delete the temporary files of unfinished partitions."""
        unfinished = [w.batch for w in self.workers if w.batch] + [self.failed]
        for w in self.workers:
            w.stop(kill=True)
        for batch in unfinished:
            for partition in batch.partitions if batch and not self.job.lake.remote else ():
                self.job.lake.delete(self.job.temp_path(partition))


def run_batch(
    job: BatchJob,
    partitions: Sequence[str],
    settings: BatchSettings,
    *,
    start_method: str = "forkserver",
    log: Callable[[str], None] = lambda _: None,
) -> BatchReport:
    """Score `partitions` as mini-batches across worker processes; raise MiniBatchFailed
    naming the partition when a mini-batch fails on every attempt."""
    if settings.instance_count != 1:
        raise ValueError("the local pool is one instance; instance_count > 1 needs Azure ML")
    started = time.monotonic()
    plan = plan_mini_batches(partitions, settings.mini_batch_size, settings.workers())
    ctx = mp.get_context(start_method)
    if start_method == "forkserver":
        # `__main__` too: otherwise every worker re-imports the parent's main module.
        ctx.set_forkserver_preload(["__main__", *job.modules()])  # no effect once it runs
    run = _Run(job, settings, plan, ctx)
    try:
        run.loop(log)
    except BaseException:
        run.abort()
        raise
    for w in run.workers:
        w.stop(kill=False)
    return BatchReport(
        rows={p: run.rows[p] for p in partitions},
        workers=len(run.workers),
        mini_batches=len(plan),
        retries=run.retries,
        seconds=time.monotonic() - started,
    )
