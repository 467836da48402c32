"""Layout and reader of the inference log that the scoring server collects.

Layout: `<inference_log_dir>/date=YYYY-MM-DD/<endpoint>.<host>-<pid>-<start>.jsonl`, one
JSON object per line, one file per UTC day per server process. A row is filed under
the UTC day of its own `timestamp`, so a day's folder is a complete daily partition.

A server process never appends to another process's file, so a line torn by a crash
(SIGKILL mid-write) can only be the unterminated tail of a dead process's file; that
request was never acknowledged, and `iter_records` skips it. Any other unreadable
line is corruption and raises.

Images (requests to image models, `serving.scoring.image_model`): a row's `inputs` hold
each image's content address and statistics, `{"columns": ["image", "width", "height",
"brightness", "contrast", "sharpness"], "data": [["sha256:<hex>", ...], ...]}`, never
the bytes; those are written once per content to `<inference_log_dir>/images/<hex>`
(temp file, fsync, rename, folder fsync) before the row that names them.

Row fields: request_id, timestamp (ISO 8601 UTC), endpoint, deployment, model_name,
model_version, mirror (true for a mirrored copy), status, latency_ms, inputs
({"columns": [...], "data": [[...]]}), outputs (predictions or null), error.

Framework-free and stdlib-only, so monitoring assets can read the log anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DAY_PREFIX = "date="
IMAGES_DIR = "images"


def log_file(directory: str | Path, day: str, endpoint: str, process_tag: str) -> Path:
    """The file one server process appends a day's rows to."""
    return Path(directory) / f"{DAY_PREFIX}{day}" / f"{endpoint}.{process_tag}.jsonl"


def image_file(directory: str | Path, image_digest: str) -> Path:
    """Where the bytes of an image logged as `sha256:<hex>` (or plain `<hex>`) are kept."""
    return Path(directory) / IMAGES_DIR / image_digest.removeprefix("sha256:")


def days(directory: str | Path) -> list[str]:
    """The UTC days (YYYY-MM-DD) that have log files, oldest first."""
    root = Path(directory)
    if not root.is_dir():
        return []
    return sorted(p.name[len(DAY_PREFIX) :] for p in root.glob(f"{DAY_PREFIX}*") if p.is_dir())


def read_file(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of one log file; an unterminated last line (torn by a crash) is skipped."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    lines.pop()  # the text after the last newline: b"" or a torn, unacknowledged write
    for number, line in enumerate(lines, start=1):
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number} is not a JSON row: {exc}") from exc


def iter_records(directory: str | Path, day: str | None = None) -> Iterator[dict[str, Any]]:
    """All rows under `directory` (or one UTC day of them), file by file."""
    for d in [day] if day else days(directory):
        for path in sorted((Path(directory) / f"{DAY_PREFIX}{d}").glob("*.jsonl")):
            yield from read_file(path)
