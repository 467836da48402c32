"""Notifications: the outbox round trip and a webhook against a real HTTP server.

Protects: every record reaches the JSONL outbox intact and in order (and a torn last
line is skipped); the webhook body carries Slack's `text` and a Teams MessageCard with
the facts; a webhook that answers 5xx or cannot be reached is retried (tenacity,
`attempts` POSTs, no wait in tests) and a 4xx is not; one that still fails raises
NotificationError only after the record is in the outbox as delivered=false with its
attempt count, and the URL (its secret) appears in neither the error nor the outbox.
A dead webhook never holds back a sensor's run request, and the budget alert run
pauses training before it notifies. The server is `http.server` on 127.0.0.1 in a
thread, shut down by the fixture.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg
import pytest

from mlops_assets.platform.budget_alert import budget_alert, budget_alert_job
from mlops_core.results import CostSummary
from resources.clock import Clock
from resources.endpoint_local import _free_port
from resources.governance import Governance
from resources.notify import (
    NotificationError,
    OutboxNotifier,
    WebhookNotifier,
    read_outbox,
)
from sensors.budget import budget_sensor

SECRET_PATH = "/hooks/T000/B000/s3cr3t-token"


class Hook:
    """A webhook receiver: records JSON bodies, answers `status`."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200
        self.statuses: list[int] = []
        """Answers for the next POSTs, in order; then `status`."""
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.paths.append(self.path)
                status = hook.statuses.pop(0) if hook.statuses else hook.status
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"boom")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}"


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    thread.join(timeout=10)


def test_outbox_round_trip(tmp_path, caplog):
    notifier = OutboxNotifier(outbox_path=str(tmp_path / "n" / "outbox.jsonl"))
    assert notifier.read_outbox() == []
    with caplog.at_level(logging.INFO, logger="mlops.notify"):
        first = notifier.notify(
            "endpoint.slo_breach",
            "critical",
            "classical-online: p99 over SLO",
            "p99 412 ms over 250 ms; scaled out to 3 workers.",
            facts={"p99_ms": 412.0, "workers": 3, "path": tmp_path},
            audience="infrastructure",
        )
        second = notifier.notify("budget", "info", "Budget 50% reached", "")
    assert [r.levelname for r in caplog.records] == ["CRITICAL", "INFO"]
    assert "endpoint.slo_breach" in caplog.records[0].getMessage()

    records = notifier.read_outbox()
    assert records == [first, second]
    assert first["facts"] == {"p99_ms": 412.0, "workers": 3, "path": str(tmp_path)}
    assert first["delivered"] is True and first["channel"] == "outbox"
    assert first["id"] != second["id"] and second["facts"] == {} and second["audience"] == ""
    assert set(first) >= {"id", "ts", "topic", "severity", "title", "text", "facts", "audience"}

    with open(tmp_path / "n" / "outbox.jsonl", "a") as fh:  # a crash mid-append
        fh.write('{"id": "torn"')
    assert read_outbox(tmp_path / "n" / "outbox.jsonl") == records

    with pytest.raises(ValueError, match="severity must be one of"):
        notifier.notify("x", "fatal", "t", "")  # type: ignore[arg-type]


def test_webhook_posts_slack_and_teams_shapes(hook, tmp_path):
    outbox = tmp_path / "outbox.jsonl"
    notifier = WebhookNotifier(url=hook.url, outbox_path=str(outbox), timeout_s=5)
    record = notifier.notify(
        "endpoint.scale_out",
        "warning",
        "classical-online scaled out",
        "5xx rate 3.0% over 1.0%",
        facts={"workers": 2, "rate_5xx": 0.03},
        audience="infrastructure",
    )
    assert record["delivered"] is True and record["channel"] == "webhook:127.0.0.1"
    assert hook.paths == [SECRET_PATH]
    (body,) = hook.bodies
    assert body["text"].startswith("[WARNING] classical-online scaled out\n5xx rate 3.0%")
    assert "workers: 2" in body["text"]
    assert (
        body["@type"] == "MessageCard" and body["title"] == "[WARNING] classical-online scaled out"
    )
    (section,) = body["sections"]
    assert section["activityTitle"] == "endpoint.scale_out"
    assert section["facts"] == [
        {"name": "workers", "value": "2"},
        {"name": "rate_5xx", "value": "0.03"},
    ]
    assert read_outbox(outbox) == [record]


def dead_url() -> str:
    """A URL nothing listens on (a port just freed on 127.0.0.1)."""
    return f"http://127.0.0.1:{_free_port()}{SECRET_PATH}"


def test_webhook_failure_raises_after_the_outbox_has_it(hook, tmp_path):
    outbox = tmp_path / "outbox.jsonl"
    hook.status = 500
    notifier = WebhookNotifier(url=hook.url, outbox_path=str(outbox), attempts=3, backoff_s=0)
    with pytest.raises(NotificationError, match="answered 500: boom") as failed:
        notifier.notify("budget", "critical", "Budget 100% reached", "training paused")
    assert len(hook.bodies) == 3  # retried
    (record,) = read_outbox(outbox)
    assert record["delivered"] is False and "500" in record["error"] and record["attempts"] == 3
    assert record["id"] in str(failed.value) and "delivered=false" in str(failed.value)

    unreachable = WebhookNotifier(url=dead_url(), outbox_path=str(outbox), timeout_s=2, backoff_s=0)
    with pytest.raises(NotificationError, match="ConnectError"):
        unreachable.notify("budget", "warning", "Budget 80% reached", "")
    assert [r["delivered"] for r in read_outbox(outbox)] == [False, False]
    assert "s3cr3t" not in outbox.read_text() and "s3cr3t" not in str(failed.value)


def test_dead_webhook_is_retried_then_kept_in_the_outbox(tmp_path):
    outbox = tmp_path / "outbox.jsonl"
    notifier = WebhookNotifier(url=dead_url(), outbox_path=str(outbox), attempts=4, backoff_s=0)
    with pytest.raises(NotificationError, match="after 4 attempt"):
        notifier.notify("infra", "critical", "classical-online at its limit", "p99 over SLO")
    (record,) = read_outbox(outbox)
    assert record["attempts"] == 4 and record["delivered"] is False
    assert record["title"] == "classical-online at its limit"


def test_transient_failure_is_retried_and_a_client_error_is_not(hook, tmp_path):
    notifier = WebhookNotifier(url=hook.url, attempts=3, backoff_s=0)
    hook.statuses = [503, 429]
    record = notifier.notify("budget", "info", "Budget 50% reached", "")
    assert record["delivered"] is True and record["attempts"] == 3 and len(hook.bodies) == 3
    hook.statuses = [404]
    with pytest.raises(NotificationError, match="answered 404"):
        notifier.notify("budget", "info", "Budget 50% reached", "")
    assert len(hook.bodies) == 4  # a wrong URL does not heal: asked once


def test_dead_webhook_blocks_neither_the_request_nor_the_run_action(tmp_path, instance):
    """The budget sensor requests with no notifier; the run pauses training, then fails loudly."""
    outbox = tmp_path / "outbox.jsonl"
    governance = Governance(audit_path=str(tmp_path / "audit.jsonl"))
    dead = WebhookNotifier(url=dead_url(), outbox_path=str(outbox), attempts=2, backoff_s=0)
    cost = CostSummary(month="2031-05", month_cost=25.5, monthly_budget=25.0,
                       pct_of_budget=102.0, currency="USD", thresholds=(50, 80, 100))  # fmt: skip
    instance.report_runless_asset_event(
        dg.AssetMaterialization(["platform", "cost_ledger"], metadata=cost.to_metadata())
    )
    with dg.build_sensor_context(instance=instance, resources={"notifier": dead}) as ctx:
        result = budget_sensor(ctx)
    assert [r.run_key for r in result.run_requests] == [
        "budget-2031-05-50", "budget-2031-05-80", "budget-2031-05-100",
    ]  # fmt: skip
    assert not outbox.exists()  # the tick sent nothing

    defs = dg.Definitions(
        assets=[budget_alert],
        jobs=[budget_alert_job],
        resources={"governance": governance, "notifier": dead},
    )
    run = defs.resolve_job_def(budget_alert_job.name).execute_in_process(
        instance=instance, run_config=result.run_requests[-1].run_config, raise_on_error=False
    )
    assert not run.success  # the undelivered notice fails the run ...
    now = Clock(frozen_at="2031-05-20T12:00:00+00:00").now()
    assert "monthly budget reached" in governance.paused_reason(now)  # ... after the pause
    (record,) = read_outbox(outbox)
    assert record["delivered"] is False and record["attempts"] == 2
