"""Validated data is checked on read, and a bad day delivered by the feed is caught by name.

Protects: validation records the sha256 of each validated partition (in the
lake and on the asset); a validated file edited afterwards stops the training
job with a message naming the day, registers nothing, and re-validating the
day makes training work again; the batch endpoint refuses such a day too; the
issue's example day (unknown destinations, negative air times, every flight
late), dropped in the landing folder, passes the four contract checks but is
caught by the new checks, each naming its problem, and is not validated; the
label-rate anomaly warns by default and blocks when the policy says so.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.scenarios.classical import SPEC
from mlops_assets.scenarios.classical.data_assets import landing_path, validated_path
from mlops_assets.scenarios.classical.features import label_rate
from mlops_assets.scenarios.classical.label_rate import LabelRateRule
from mlops_assets.scenarios.classical.schema import CHECKS, CONTRACT_CHECKS
from mlops_assets.scenarios.classical.source import flights_for_day
from mlops_assets.scenarios.classical.validated_store import (
    RateHistory,
    integrity_path,
    read_validated,
)
from mlops_core.integrity import (
    IntegrityError,
    IntegrityRecord,
    read_verified,
    sha256_hex,
    write_recorded,
)
from resources.lake import LocalLake
from tests.helpers import QUIET, defs_with, land_days, materialized, metadata, train
from tests.scenarios.classical.flight_edits import late_by

EDITED_DAY = "2013-02-10"
NEW_DAY = "2013-03-01"


def step_failure(result) -> str:
    return next(
        e for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    ).event_specific_data.error.message


def test_integrity_records_are_verified_on_read(tmp_path):
    lake = LocalLake(root=str(tmp_path))
    record = write_recorded(lake, "a/x.bin", b"accepted", "a/x.json", {"rows": 1})
    assert record == IntegrityRecord("a/x.bin", sha256_hex(b"accepted"), 8, {"rows": 1})
    assert read_verified(lake, "a/x.bin", "a/x.json", "x", "redo") == (b"accepted", record.sha256)

    lake.write_bytes("a/x.bin", b"edited!!")
    with pytest.raises(IntegrityError, match=r"x changed since it was accepted: a/x.bin .*redo"):
        read_verified(lake, "a/x.bin", "a/x.json", "x", "redo")
    with pytest.raises(IntegrityError, match="has no integrity record: redo"):
        read_verified(lake, "a/x.bin", "a/none.json", "x", "redo")
    write_recorded(lake, "a/y.bin", b"other", "a/y.json")
    with pytest.raises(IntegrityError, match=r"record is for a/y\.bin, not a/x\.bin"):
        read_verified(lake, "a/x.bin", "a/y.json", "x", "redo")


def test_validation_records_each_partition_hash_in_the_lake_and_on_the_asset(landed):
    lake_root, result = landed
    lake = LocalLake(root=str(lake_root))
    hashes = metadata(result, "validated_flights")["content_sha256"]
    assert len(hashes) == 59
    for day in ("2013-01-01", "2013-02-28"):
        data = lake.read_bytes(validated_path(day))
        assert hashes[day] == sha256_hex(data)
        record = IntegrityRecord.from_json(lake.read_bytes(integrity_path(day)))
        assert record.sha256 == hashes[day] and record.size == len(data)
        late = label_rate(pd.read_parquet(lake.uri(validated_path(day))))
        assert record.stats["late_rate"] == pytest.approx(late)
    # the records live outside the folder of validated days, which lists days only
    assert all(p.endswith(".parquet") for p in lake.list("validated/classical/flights"))
    checks = result.get_asset_check_evaluations()
    assert sorted(c.check_name for c in checks) == sorted(CHECKS)
    assert all(c.passed for c in checks), [c.description for c in checks if not c.passed]


def test_a_validated_file_edited_in_place_stops_training_until_revalidated(stores, instance):
    defs, lake = defs_with(stores), stores["lake"]
    edited = lake.read_parquet(validated_path(EDITED_DAY))
    edited.loc[0, "arr_delay"] = edited.loc[0, "arr_delay"] + 1
    lake.write_parquet(validated_path(EDITED_DAY), edited)

    result = train(defs, instance)
    assert not result.success
    message = step_failure(result)
    assert f"validated partition {EDITED_DAY} changed since validation" in message
    assert "re-validate it" in message
    assert materialized(result, "training_set") == []
    assert stores["registry"].versions(SPEC.model_name, "dev") == []

    assert land_days(defs, instance, EDITED_DAY, EDITED_DAY).success
    result = train(defs, instance)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert [str(v.version) for v in stores["registry"].versions(SPEC.model_name, "dev")] == ["1"]
    assert metadata(result, "training_set")["validated_inputs_sha256"]


def test_the_batch_endpoint_refuses_a_changed_or_unrecorded_day(stores):
    lake = stores["lake"]
    assert len(SPEC.data.batch_items(lake, EDITED_DAY)) == len(flights_for_day(EDITED_DAY))
    lake.write_bytes(validated_path(EDITED_DAY), lake.read_bytes(validated_path("2013-02-11")))
    with pytest.raises(dg.Failure, match=f"{EDITED_DAY} changed since validation"):
        SPEC.data.batch_items(lake, EDITED_DAY)
    lake.delete(integrity_path(EDITED_DAY))
    with pytest.raises(dg.Failure, match=f"{EDITED_DAY} .* has no integrity record"):
        SPEC.data.batch_items(lake, EDITED_DAY)


def test_history_is_read_from_the_records_of_validated_days(stores):
    lake = stores["lake"]
    history = RateHistory(lake, LabelRateRule()).before(NEW_DAY)
    assert list(history) == [f"2013-02-{d:02d}" for d in range(1, 29)]
    day = "2013-02-14"
    assert history[day] == pytest.approx(label_rate(read_validated(lake, day)[0]))


def issue_day() -> bytes:
    """The issue's example: unknown destinations, negative air times, every flight late."""
    frame = late_by(flights_for_day(NEW_DAY), 90)
    frame.loc[:9, "dest"] = ["XQZ", "QQQ"] * 5
    frame.loc[20:24, "air_time"] = -30.0
    return frame.to_parquet(index=False)


def land_with(defs, instance, day: str, checks_config: dict):
    ops = {
        f"classical__{asset}": {"config": checks_config}
        for asset in ("raw_flights", "validated_flights")
    }
    return defs.resolve_job_def("classical_data_job").execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={**QUIET, "ops": ops},
        tags={
            "dagster/asset_partition_range_start": day,
            "dagster/asset_partition_range_end": day,
        },
    )


def test_the_issue_example_day_is_caught_by_name_and_not_validated(stores, instance):
    defs, lake = defs_with(stores), stores["lake"]
    lake.write_bytes(landing_path(NEW_DAY), issue_day())
    result = land_days(defs, instance, NEW_DAY, NEW_DAY)
    assert not result.success

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert all(checks[c].passed for c in CONTRACT_CHECKS), "the old checks miss this day"
    reference, physical = checks["reference_codes"], checks["physical_ranges"]
    assert not reference.passed and reference.severity == dg.AssetCheckSeverity.ERROR
    assert "column 'dest' has 10 rows with airport codes" in reference.description
    assert "QQQ" in reference.description and "XQZ" in reference.description
    assert not physical.passed and physical.severity == dg.AssetCheckSeverity.ERROR
    assert "column 'air_time' has 5 values <= 0" in physical.description
    label = checks["label_rate"]
    assert not label.passed and label.severity == dg.AssetCheckSeverity.WARN
    assert "label rate" in label.description and "is 1.000" in label.description
    assert checks["timestamps"].passed

    assert materialized(result, "validated_flights") == []
    assert not lake.exists(validated_path(NEW_DAY))
    assert not lake.exists(integrity_path(NEW_DAY))


def test_label_rate_anomaly_warns_by_default_and_blocks_by_policy(stores, instance):
    defs, lake = defs_with(stores), stores["lake"]
    lake.write_bytes(landing_path(NEW_DAY), late_by(flights_for_day(NEW_DAY), 90).to_parquet())

    blocked = land_with(defs, instance, NEW_DAY, {"label_rate": "block"})
    assert not blocked.success
    label = next(c for c in blocked.get_asset_check_evaluations() if c.check_name == "label_rate")
    assert not label.passed and label.severity == dg.AssetCheckSeverity.ERROR
    assert materialized(blocked, "validated_flights") == []
    assert not lake.exists(validated_path(NEW_DAY))

    warned = land_with(defs, instance, NEW_DAY, {})
    assert warned.success
    label = next(c for c in warned.get_asset_check_evaluations() if c.check_name == "label_rate")
    assert not label.passed and label.severity == dg.AssetCheckSeverity.WARN
    validated = metadata(warned, "validated_flights")
    assert validated["warned_partitions"] == 1 and "label rate" in validated["warnings"]
    assert read_validated(lake, NEW_DAY)[0]["arr_delay"].dropna().eq(90).all()
