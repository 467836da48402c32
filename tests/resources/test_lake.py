"""The lake contract, held by the local folder and by Azure Blob (against a real Azurite).

Protects: byte-exact round trips, listing, missing objects named in errors,
paths that cannot escape the lake, and a raw flights partition landing
identically on both backends.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from mlops_assets.scenarios.classical.source import flights_for_day
from resources.lake import AzureBlobLake, DataLake, LakePathError, LocalLake, clean_path


@pytest.fixture(params=["local", "azurite"])
def lake(request, tmp_path) -> DataLake:
    if request.param == "local":
        return LocalLake(root=str(tmp_path / "lake"))
    conn = request.getfixturevalue("azurite")
    return AzureBlobLake(container=f"lake-{uuid.uuid4().hex[:8]}", connection_string=conn)


def test_bytes_round_trip_and_overwrite(lake: DataLake):
    lake.write_bytes("raw/a/b.bin", b"\x00first")
    lake.write_bytes("raw/a/b.bin", b"\x00second")
    assert lake.read_bytes("raw/a/b.bin") == b"\x00second"
    assert lake.exists("raw/a/b.bin")
    assert not lake.exists("raw/a/c.bin")


def test_list_is_sorted_and_scoped(lake: DataLake):
    for name in ["z/2.txt", "z/1.txt", "z/sub/3.txt", "y/4.txt"]:
        lake.write_bytes(name, b"x")
    assert lake.list("z") == ["z/1.txt", "z/2.txt", "z/sub/3.txt"]
    assert lake.list("nothing-here") == []


def test_missing_object_error_names_the_path(lake: DataLake):
    with pytest.raises(FileNotFoundError, match=r"raw/none\.parquet"):
        lake.read_bytes("raw/none.parquet")


def test_delete_is_idempotent(lake: DataLake):
    lake.write_bytes("tmp/x", b"1")
    lake.delete("tmp/x")
    lake.delete("tmp/x")
    assert not lake.exists("tmp/x")


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside", "a/../../b", ""])
def test_paths_cannot_escape_the_lake(lake: DataLake, bad: str):
    with pytest.raises(LakePathError):
        lake.write_bytes(bad, b"x")


def test_clean_path_normalises_separators():
    assert clean_path("a//b/./c") == "a/b/c"
    assert clean_path("a\\b") == "a/b"


def test_flights_partition_round_trips_exactly(tmp_path, azurite):
    """The same raw partition, through both backends, comes back identical."""
    day = flights_for_day("2013-03-01")
    local = LocalLake(root=str(tmp_path / "lake"))
    blob = AzureBlobLake(container="roundtrip", connection_string=azurite, prefix="team-a")
    for lake in (local, blob):
        lake.write_parquet("raw/classical/flights/2013-03-01.parquet", day)
    from_local = local.read_parquet("raw/classical/flights/2013-03-01.parquet")
    from_blob = blob.read_parquet("raw/classical/flights/2013-03-01.parquet")
    pd.testing.assert_frame_equal(from_local, from_blob)
    pd.testing.assert_frame_equal(from_local, day)
    assert local.read_bytes("raw/classical/flights/2013-03-01.parquet") == blob.read_bytes(
        "raw/classical/flights/2013-03-01.parquet"
    )
    assert blob.list("raw") == ["raw/classical/flights/2013-03-01.parquet"]
    assert blob.uri("raw/x.parquet") == "abfs://roundtrip/team-a/raw/x.parquet"


def test_local_write_failure_keeps_previous_object(tmp_path, monkeypatch):
    lake = LocalLake(root=str(tmp_path / "lake"))
    lake.write_bytes("raw/keep.bin", b"good")

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        lake.write_bytes("raw/keep.bin", b"half")
    monkeypatch.undo()
    assert lake.read_bytes("raw/keep.bin") == b"good"
    assert lake.list("raw") == ["raw/keep.bin"]
