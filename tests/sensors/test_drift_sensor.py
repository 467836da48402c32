"""The drift sensor decides the loopback from typed results, and never loses or doubles a trigger.

Protects: a trigger seen during the cooldown or a training pause stays pending in the
cursor and is served once the cooldown ends, the pause is lifted or it expires; one
event (a drifted day of one served version, seen in drift and performance results
alike) never yields two run keys; results that call for nothing only advance the
cursor; the spec's loopback picks the job (`relabel` requests labeling). Results are
real materializations in a Dagster test instance, time is a pinned Clock.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

import dagster as dg
import pytest

from mlops_assets.scenarios.classical import SPEC
from mlops_core.naming import labeling_job_name, training_job_name
from mlops_core.results import DriftResult, PerformanceResult
from mlops_core.spec import LabelingSpec
from resources.clock import Clock
from resources.governance import Governance
from sensors.drift import COOLDOWN_SECONDS, build_drift_sensor

T0 = datetime.fromisoformat("2031-05-20T12:00:00+00:00")


def drifted(day: str, version: str = "1", share: float = 0.6) -> DriftResult:
    return DriftResult(
        day=day, model_version=version, rows=500, share_of_drifted_features=share,
        drift_share_threshold=0.5, drifted_features=("distance",) if share else (),
        prediction_drift=False, prediction_drift_score=0.2,
    )  # fmt: skip


def degraded(day: str, version: str = "1", value: float = 0.70) -> PerformanceResult:
    return PerformanceResult(
        day=day, rows=500, labeled_rows=500, metric="accuracy", max_drop=0.05,
        metrics={"accuracy": value}, model_version=version, value=value, holdout_value=0.80,
    )  # fmt: skip


def report(instance, result: DriftResult | PerformanceResult, scenario: str = "classical"):
    artifact = "data_drift" if isinstance(result, DriftResult) else "model_performance"
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            [scenario, artifact], partition=result.day, metadata=result.to_metadata()
        )
    )


class Ticks:
    """Evaluates one sensor tick after another, carrying the cursor like the daemon."""

    def __init__(self, sensor, instance, governance: Governance) -> None:
        self.sensor, self.instance, self.governance = sensor, instance, governance
        self.cursor: str | None = None

    def at(self, when: datetime) -> list[dg.RunRequest]:
        resources = {"governance": self.governance, "clock": Clock(frozen_at=when.isoformat())}
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=resources
        ) as ctx:
            result = self.sensor(ctx)
        self.cursor = result.cursor
        return list(result.run_requests or [])

    def pending_days(self) -> list[str]:
        return [t["day"] for t in json.loads(self.cursor or "{}").get("pending", [])]


@pytest.fixture
def governance(tmp_path) -> Governance:
    return Governance(audit_path=str(tmp_path / "governance" / "audit.jsonl"))


def test_trigger_during_cooldown_stays_pending_and_is_served_after(instance, governance):
    ticks = Ticks(build_drift_sensor(SPEC), instance, governance)
    assert ticks.at(T0) == []
    report(instance, drifted("2013-03-05"))
    (first,) = ticks.at(T0)
    assert first.run_key == "retrain-classical-2013-03-05-v1"
    assert (
        first.tags["mlops/drift_day"] == "2013-03-05" and first.tags["mlops/loopback"] == "retrain"
    )
    assert "data_drift: 60% of features drifted" in first.tags["mlops/reason"]

    report(instance, drifted("2013-03-06"))
    assert ticks.at(T0 + timedelta(hours=1)) == []
    assert ticks.pending_days() == ["2013-03-06"]  # kept, not dropped with the cursor
    assert ticks.at(T0 + timedelta(hours=5)) == []
    (served,) = ticks.at(T0 + timedelta(seconds=COOLDOWN_SECONDS + 1))
    assert served.run_key == "retrain-classical-2013-03-06-v1"
    assert ticks.pending_days() == []
    assert ticks.at(T0 + timedelta(hours=13)) == []


def test_pending_triggers_are_served_by_one_run(instance, governance):
    ticks = Ticks(build_drift_sensor(SPEC, cooldown_seconds=3600), instance, governance)
    report(instance, drifted("2013-03-05"))
    assert len(ticks.at(T0)) == 1
    for day in ("2013-03-07", "2013-03-06"):
        report(instance, drifted(day))
    assert ticks.at(T0 + timedelta(minutes=10)) == []
    assert ticks.pending_days() == ["2013-03-07", "2013-03-06"]
    (served,) = ticks.at(T0 + timedelta(hours=2))
    assert served.run_key == "retrain-classical-2013-03-07-v1"  # the newest day
    assert served.tags["mlops/pending_triggers"] == "2"


def test_trigger_during_budget_pause_is_served_after_resume(instance, governance):
    ticks = Ticks(build_drift_sensor(SPEC), instance, governance)
    governance.pause(T0 + timedelta(days=10), "monthly budget reached (101.0%)", actor="test")
    report(instance, drifted("2013-03-05"))
    assert ticks.at(T0) == []
    assert ticks.at(T0 + timedelta(days=1)) == []
    assert ticks.pending_days() == ["2013-03-05"]
    governance.resume("priya", "budget raised")
    (served,) = ticks.at(T0 + timedelta(days=1, minutes=1))
    assert served.run_key == "retrain-classical-2013-03-05-v1"


def test_trigger_during_budget_pause_is_served_when_the_pause_ends(instance, governance):
    ticks = Ticks(build_drift_sensor(SPEC), instance, governance)
    until = T0 + timedelta(days=3)
    governance.pause(until, "monthly budget reached (100.0%)", actor="test")
    report(instance, degraded("2013-03-05"))
    assert ticks.at(until - timedelta(seconds=1)) == []
    (served,) = ticks.at(until)
    assert served.run_key == "retrain-classical-2013-03-05-v1"
    assert served.tags["mlops/reason"].startswith("model_performance: accuracy 0.700")


def test_one_event_never_yields_two_run_keys(instance, governance):
    ticks = Ticks(build_drift_sensor(SPEC, cooldown_seconds=60), instance, governance)
    report(instance, drifted("2013-03-05"))
    report(instance, degraded("2013-03-05"))  # the same day and version, seen twice
    (request,) = ticks.at(T0)
    assert ticks.at(T0 + timedelta(seconds=1)) == []
    # later results for the served event ask for nothing, even after the cooldown
    report(instance, degraded("2013-03-05", value=0.6))
    report(instance, drifted("2013-03-05", share=0.8))
    assert ticks.at(T0 + timedelta(hours=1)) == []
    # the same day served by another model version is another event
    report(instance, drifted("2013-03-05", version="2"))
    (other,) = ticks.at(T0 + timedelta(hours=2))
    assert {request.run_key, other.run_key} == {
        "retrain-classical-2013-03-05-v1",
        "retrain-classical-2013-03-05-v2",
    }


def test_results_without_a_trigger_only_advance_the_cursor(instance, governance):
    ticks = Ticks(build_drift_sensor(SPEC), instance, governance)
    report(instance, drifted("2013-03-05", share=0.1))
    report(instance, degraded("2013-03-05", value=0.78))
    instance.report_runless_asset_event(  # written by an older asset version: skipped
        dg.AssetMaterialization(["classical", "data_drift"], partition="2013-03-06")
    )
    assert ticks.at(T0) == []
    cursor = json.loads(ticks.cursor)
    assert cursor["data_drift"] and cursor["model_performance"] and cursor["pending"] == []


def test_relabel_loopback_requests_the_labeling_job(instance, governance):
    spec = dataclasses.replace(
        SPEC,
        name="vision",
        loopback="relabel",
        labeling=LabelingSpec(task_format="image", uncertainty=lambda rows: rows),
    )
    sensor = build_drift_sensor(spec)
    assert sensor.job_name == labeling_job_name("vision")
    report(instance, drifted("2013-03-05"), scenario="vision")
    report(instance, drifted("2013-03-05"), scenario="classical")  # another scenario's
    ticks = Ticks(sensor, instance, governance)
    (request,) = ticks.at(T0)
    assert request.run_key == "relabel-vision-2013-03-05-v1"
    assert request.tags["mlops/loopback"] == "relabel" and request.tags["scenario"] == "vision"
    config = request.run_config["ops"]["vision__labeling_tasks"]["config"]
    assert config["days"] == ["2013-03-05"] and config["reason"].startswith("data_drift: ")
    # days drifted during the cooldown are labeled together, in one run
    for day in ("2013-03-07", "2013-03-06"):
        report(instance, drifted(day), scenario="vision")
    assert ticks.at(T0 + timedelta(hours=1)) == []
    (later,) = ticks.at(T0 + timedelta(days=1))
    assert later.run_config["ops"]["vision__labeling_tasks"]["config"]["days"] == [
        "2013-03-06",
        "2013-03-07",
    ]
    assert build_drift_sensor(SPEC).job_name == training_job_name("classical")


def test_cursor_reads_as_a_date_and_older_epoch_cursors_still_hold_the_cooldown(governance):
    from sensors.drift import hold_reason, request_time

    assert request_time(T0.isoformat()) == T0.timestamp() == request_time(T0.timestamp())
    soon = T0 + timedelta(hours=1)
    for stored in (T0.isoformat(timespec="seconds"), T0.timestamp()):
        assert "cooldown" in hold_reason({"last_request": stored}, governance, soon, 6 * 3600)
    description = build_drift_sensor(SPEC).description
    assert "6 h" in description and "50%" in description and "classical/data_drift" in description
