"""Durable, batched inference-log writer (group commit).

Contract: a request is answered only after its log row is on disk. `append`
returns an asyncio future that resolves once the row was written *and* fsynced;
the request handler awaits it before replying. A request killed before that point
was never acknowledged, so a SIGKILL loses nothing acknowledged and logs no row
twice (each row is appended once, by the request that owns it).

Design constraints:
- One writer thread per log folder. While it fsyncs one batch, new rows queue up;
  the next loop iteration writes them all with one `write` and one `fdatasync`
  (group commit), so throughput does not depend on fsync latency and there is no
  timer: a lone request is flushed at once.
- The thread settles a whole batch's futures with one `call_soon_threadsafe`, not
  one loop wake-up per row.
- Each process writes its own files (see `serving.scoring.inference_log`), opened
  O_APPEND; a new file's folder is fsynced so the file itself survives a crash.
- A failed write is cut back off the file (ftruncate to the last good size) so a
  later batch never lands after half a line; its requests get an error, not a 200.
- Image bytes a row refers to (`blobs`, by sha256 hex) go to `images/<hex>` first:
  each new one through a temp file, fdatasync and rename, then one fsync of the
  folder, so a durable row never names a missing or partial image. Content already
  there is not written again (the address is the content).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from serving.image_store import ImageStore
from serving.scoring.inference_log import IMAGES_DIR, log_file

_log = logging.getLogger(__name__)
Blobs = Mapping[str, bytes]  # sha256 hex -> the bytes it addresses
_Entry = tuple[str, bytes, "asyncio.Future[None] | None", Blobs | None]


class LogWriteError(OSError):
    """The inference log could not be written durably."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if not fut.done():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(LogWriteError(f"inference log write failed: {error}"))


class InferenceLogWriter:
    """Appends JSON lines for one endpoint under one folder, fsynced in groups."""

    def __init__(self, directory: str | Path, endpoint: str) -> None:
        self.directory = Path(directory)
        self.endpoint = endpoint
        self.process_tag = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        self.rows_written = 0
        self.batches_written = 0
        self.write_errors = 0
        self._cond = threading.Condition()
        self._pending: list[_Entry] = []
        self._closed = False
        self._files: dict[str, tuple[int, int]] = {}  # day -> (fd, size known good)
        self._images = ImageStore(self.directory / IMAGES_DIR, self.process_tag, _fsync_dir)
        self._thread = threading.Thread(
            target=self._run, name=f"inference-log-{endpoint}", daemon=True
        )
        self._thread.start()

    def append(self, day: str, line: bytes, blobs: Blobs | None = None) -> asyncio.Future[None]:
        """Queue one line (ending in a newline) and the image bytes it names; the future
        resolves once both are durable."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put((day, line, fut, blobs))
        return fut

    def append_nowait(self, day: str, line: bytes, blobs: Blobs | None = None) -> None:
        """Queue a line nobody waits for (a mirrored copy's row)."""
        self._put((day, line, None, blobs))

    def _put(self, entry: _Entry) -> None:
        with self._cond:
            if self._closed:
                raise LogWriteError("the inference log writer is closed")
            self._pending.append(entry)
            if len(self._pending) == 1:
                self._cond.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the thread, close the files."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
        self._images.close()
        for fd, _ in self._files.values():
            os.close(fd)
        self._files.clear()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                batch, self._pending = self._pending, []
            if not batch:
                return  # closed and drained
            error: BaseException | None = None
            try:
                self._write(batch)
            except OSError as exc:
                error = exc
                self.write_errors += 1
                _log.error("inference log write failed (%d rows): %s", len(batch), exc)
            self._notify(batch, error)

    def _write(self, batch: list[_Entry]) -> None:
        by_day: dict[str, list[bytes]] = {}
        blobs: dict[str, bytes] = {}
        for day, line, _, named in batch:
            by_day.setdefault(day, []).append(line)
            if named:
                blobs.update(named)
        if blobs:
            self._images.store(blobs)
        for day, lines in by_day.items():
            fd, size = self._open(day)
            data = memoryview(b"".join(lines))
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fdatasync(fd)
            except OSError:
                os.ftruncate(fd, size)  # drop the partial batch; its requests get an error
                raise
            self._files[day] = (fd, size + len(data))
        self.rows_written += len(batch)
        self.batches_written += 1

    def _open(self, day: str) -> tuple[int, int]:
        if day in self._files:
            return self._files[day]
        path = log_file(self.directory, day, self.endpoint, self.process_tag)
        new_dir = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        _fsync_dir(path.parent)
        if new_dir:
            _fsync_dir(path.parent.parent)
        for old_day in [d for d in self._files if d < day]:  # a new UTC day: yesterday is done
            os.close(self._files.pop(old_day)[0])
        self._files[day] = (fd, os.fstat(fd).st_size)
        return self._files[day]

    @staticmethod
    def _notify(batch: list[_Entry], error: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, _, fut, _ in batch:
            if fut is not None:
                by_loop.setdefault(fut.get_loop(), []).append(fut)
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, futures, error)
