"""Notifications to people (infrastructure team, data scientists, owners): one call, one record.

`Notifier.notify(topic, severity, title, text, facts, audience)` builds a record
{id, ts, topic, severity, title, text, facts, audience, channel, delivered} and hands it
to the implementation:
- `OutboxNotifier` (local default): logs it on logger "mlops.notify" and appends it to a
  JSONL outbox; the outbox is the delivery, so it is always `delivered: true`.
- `WebhookNotifier`: POSTs one body that both Slack incoming webhooks (`text`) and Teams
  connectors (MessageCard `title`/`sections`/`facts`) accept, and writes the outbox too
  when `outbox_path` is set. Transient failures (connection errors, timeouts, 429, 5xx)
  are retried with tenacity's exponential backoff, `attempts` times in all; a 4xx is not
  retried (a wrong URL does not heal). A POST that still fails is recorded with
  `delivered: false` and the attempt count first, and only then raised as
  NotificationError, so no alert is lost silently. Give the URL as `dg.EnvVar(...)`:
  webhook URLs carry their secret, so it is never logged or written to the outbox (the
  record names the host only).

Only runs notify (sensors decide, runs act), so a retrying or failing webhook delays or
fails the run that notifies, never a sensor tick or the runs it requests.

Appends are one `write` on an O_APPEND descriptor under an exclusive flock, then fsync,
so concurrent sensors and runs never interleave lines and an acknowledged notification
survives a crash; `read_outbox` skips a torn, unterminated last line.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import urlsplit

import dagster as dg
import tenacity
from pydantic import Field

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import httpx

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
_LOG_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_COLOUR = {"info": "2E77D0", "warning": "F2C744", "critical": "D0342C"}  # Teams themeColor
_log = logging.getLogger("mlops.notify")


class NotificationError(RuntimeError):
    """A notification could not be delivered; it is in the outbox with delivered=false."""


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def append_outbox(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record durably (flock, one O_APPEND write, fsync)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock


def read_outbox(path: str | Path) -> list[dict[str, Any]]:
    """All records of an outbox, oldest first ([] when there is none yet)."""
    target = Path(path)
    if not target.exists():
        return []
    lines = target.read_bytes().split(b"\n")
    lines.pop()  # b"" after the last newline, or a line torn by a crash mid-write
    return [json.loads(line) for line in lines if line.strip()]


class Notifier(dg.ConfigurableResource, ABC):
    """Sends a notification and returns its record."""

    def notify(
        self,
        topic: str,
        severity: Severity,
        title: str,
        text: str,
        facts: dict[str, Any] | None = None,
        audience: str = "",
    ) -> dict[str, Any]:
        """Notify `audience` (a team or owner, "" for the default channel) about `topic`.

        `topic` is a stable machine key ("endpoint.slo_breach", "budget.80pct") that
        sensors and tests filter on; `facts` are short name/value pairs shown as a table.
        """
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        if not topic or not title:
            raise ValueError("a notification needs a topic and a title")
        record = {
            "id": uuid.uuid4().hex,
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "topic": topic,
            "severity": severity,
            "title": title,
            "text": text,
            "facts": {str(k): _jsonable(v) for k, v in (facts or {}).items()},
            "audience": audience,
        }
        _log.log(
            _LOG_LEVEL[severity],
            "[%s] %s: %s%s",
            topic,
            title,
            text,
            f" (to {audience})" if audience else "",
        )
        return self.deliver(record)

    @abstractmethod
    def deliver(self, record: dict[str, Any]) -> dict[str, Any]:
        """Send a built record; return it with `channel` and `delivered` set."""


class OutboxNotifier(Notifier):
    """Log and append to a JSONL outbox (local default; a sensor or person reads it)."""

    outbox_path: str = Field(description="JSONL file the notifications are appended to.")

    def deliver(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {**record, "channel": "outbox", "delivered": True}
        append_outbox(self.outbox_path, record)
        return record

    def read_outbox(self) -> list[dict[str, Any]]:
        return read_outbox(self.outbox_path)


def webhook_body(record: dict[str, Any]) -> dict[str, Any]:
    """One JSON body for Slack incoming webhooks (`text`) and Teams MessageCards."""
    label = f"[{record['severity'].upper()}] {record['title']}"
    facts = record["facts"]
    lines = [label, record["text"], *(f"• {k}: {v}" for k, v in facts.items())]
    return {
        "text": "\n".join(line for line in lines if line),
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": label,
        "themeColor": _COLOUR[record["severity"]],
        "title": label,
        "sections": [
            {
                "activityTitle": record["topic"],
                "activitySubtitle": record["audience"] or None,
                "text": record["text"],
                "facts": [{"name": k, "value": str(v)} for k, v in facts.items()],
            }
        ],
    }


class _RetryableStatus(Exception):
    """A webhook answer worth retrying (429 or 5xx): the receiver may recover."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _answer(response: httpx.Response) -> str:
    return f"answered {response.status_code}: {response.text[:200]}"


class WebhookNotifier(Notifier):
    """POST to a Teams or Slack webhook; optionally keep an outbox copy of every record."""

    url: str = Field(description="Webhook URL; pass dg.EnvVar(...), it holds the secret.")
    outbox_path: str | None = Field(default=None, description="Also append records here.")
    timeout_s: float = Field(default=5.0, description="Connect and read timeout of the POST.")
    attempts: int = Field(default=3, ge=1, description="POSTs in all before giving up.")
    backoff_s: float = Field(
        default=1.0, ge=0, description="First wait between attempts; doubles each time (max 30s)."
    )

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        import httpx

        response = httpx.post(self.url, json=body, timeout=self.timeout_s)
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryableStatus(response)
        return response

    def deliver(self, record: dict[str, Any]) -> dict[str, Any]:
        import httpx

        host = urlsplit(self.url).hostname or "webhook"
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_exponential(multiplier=self.backoff_s, max=30),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, _RetryableStatus)),
            reraise=True,
        )
        error = None
        try:
            response = retrying(self._post, webhook_body(record))
            if not response.is_success:
                error = _answer(response)
        except _RetryableStatus as exc:
            error = _answer(exc.response)
        except httpx.HTTPError as exc:
            error = f"failed: {type(exc).__name__}: {exc}"
        attempts = retrying.statistics.get("attempt_number", 1)
        record = {
            **record,
            "channel": f"webhook:{host}",
            "delivered": error is None,
            "attempts": attempts,
        }
        if error is not None:
            record["error"] = error
        if self.outbox_path:
            append_outbox(self.outbox_path, record)
        if error is not None:
            kept = f"; kept in {self.outbox_path}" if self.outbox_path else ""
            _log.error(
                "notification %s to %s not delivered after %d attempt(s): %s",
                record["id"], host, attempts, error,
            )  # fmt: skip
            raise NotificationError(
                f"webhook {host} {error} after {attempts} attempt(s) (notification "
                f"{record['topic']!r} {record['id']}{kept} as delivered=false)"
            )
        return record
