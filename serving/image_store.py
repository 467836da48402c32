"""Durable, content-addressed storage of scored images next to the inference log.

Called by the log writer's thread for each group-commit batch, before the batch's log
rows are written: a row must never outlive the image it names. Each new content goes
to `images/<hex>` through a temp file and a rename, then the folder is fsynced once.

Design constraints:
- The data syncs of a batch's new files run concurrently (a small thread pool): the
  disk takes them together in about the time of one, where one after another they
  capped the server at a few hundred new images a second.
- Contents this process stored are remembered, so a repeated image costs a set lookup.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SYNC_THREADS = 8


class ImageStore:
    def __init__(self, folder: Path, process_tag: str, fsync_dir: Callable[[Path], None]):
        self.folder = folder
        self.process_tag = process_tag
        self._fsync_dir = fsync_dir
        self._known: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None

    def _ensure_folder(self) -> None:
        if self.folder.is_dir():
            return
        root = self.folder.parent
        new_root = not root.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fsync_dir(root)
        if new_root:
            self._fsync_dir(root.parent)

    def _write_tmp(self, name: str, data: bytes) -> tuple[int, Path]:
        tmp = self.folder / f".{name}.{self.process_tag}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        try:
            view, written = memoryview(data), 0
            while written < len(view):
                written += os.write(fd, view[written:])
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return fd, tmp

    def store(self, blobs: Mapping[str, bytes]) -> int:
        """Make every content in `blobs` durable under its name; returns how many were new."""
        self._ensure_folder()
        new = [
            name for name in blobs if name not in self._known and not (self.folder / name).exists()
        ]
        written: list[tuple[str, int, Path]] = []
        try:
            for name in new:
                written.append((name, *self._write_tmp(name, blobs[name])))
            if len(written) > 1:
                self._pool = self._pool or ThreadPoolExecutor(SYNC_THREADS, "image-sync")
                list(self._pool.map(os.fdatasync, [fd for _, fd, _ in written]))
            elif written:
                os.fdatasync(written[0][1])
        except OSError:
            for _, fd, tmp in written:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
        for name, fd, tmp in written:
            os.close(fd)
            os.replace(tmp, self.folder / name)
        # Also when every file existed: another process may have renamed one without its
        # folder fsync yet, and this batch's rows must not outlive the images they name.
        self._fsync_dir(self.folder)
        self._known.update(blobs)
        return len(written)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
