"""The local online endpoint's address and keys, against real scoring-server processes.

Protects: an endpoint keeps its port (so its scoring_uri, shown while stopped too) across
stop/start and after its workers crash; a port taken by another process is an error naming
it, never a silent move; a new endpoint does not take a stopped endpoint's port; every
endpoint has a replay key (added to endpoints created before there was one) that lets a
client file traffic under a business day, which the scoring keys alone cannot.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from resources.endpoint import EndpointError
from resources.endpoint_local import LocalOnlineEndpoints
from resources.endpoint_ports import allocate_port, port_is_free, reserved_ports
from serving.scoring.inference_log import iter_records
from tests.resources.endpoint_helpers import payload, saved_model


def _crash(endpoints: LocalOnlineEndpoints, name: str) -> None:
    """SIGKILL every worker and wait until the resource sees none running."""
    for pid in endpoints.get(name).extra["pids"]:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while endpoints.get(name).running:  # reaps the killed children on the way
        assert time.monotonic() < deadline, "killed workers still counted as running"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_an_endpoint_keeps_its_address_across_restarts_and_crashes(endpoints, tmp_path):
    info = endpoints.create_or_update_deployment(
        "t-addr", "blue", saved_model(tmp_path / "m"), "m", "1"
    )
    uri, port = info.scoring_uri, info.extra["port"]
    assert uri == f"http://127.0.0.1:{port}/score"

    endpoints.stop("t-addr")
    stopped = endpoints.get("t-addr")
    assert not stopped.running and stopped.scoring_uri == uri and stopped.extra["port"] == port
    assert json.loads((tmp_path / "endpoints" / "t-addr" / "server.json").read_text())["port"] == (
        port
    )
    restarted = endpoints.start("t-addr")
    assert restarted.scoring_uri == uri
    assert endpoints.invoke("t-addr", payload([[30.0, 1.0]])).json() == [1]

    _crash(endpoints, "t-addr")  # kill -9: no drain, no server.json update
    assert endpoints.start("t-addr").scoring_uri == uri
    assert httpx.post(
        uri,
        json=payload([[1.0, 1.0]]),
        headers={"Authorization": f"Bearer {endpoints.get_keys('t-addr')['primary']}"},
    ).json() == [0]

    scaled = endpoints.scale("t-addr", 2)
    os.kill(scaled.extra["pids"][1], signal.SIGKILL)  # one worker crashes; a change replaces it
    deadline = time.monotonic() + 30
    while endpoints.get("t-addr").workers != 1:
        assert time.monotonic() < deadline, "the killed worker is still counted"
        time.sleep(0.05)
    healed = endpoints.set_traffic("t-addr", {"blue": 100})
    assert healed.workers == 2 and healed.scoring_uri == uri


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_taken_port_is_an_error_naming_it(endpoints, tmp_path):
    info = endpoints.create_or_update_deployment(
        "t-taken", "blue", saved_model(tmp_path / "m"), "m", "1"
    )
    port = info.extra["port"]
    endpoints.stop("t-taken")
    other = endpoints.create_or_update_deployment(
        "t-other", "blue", saved_model(tmp_path / "m2"), "m", "1"
    )
    assert other.extra["port"] != port  # a stopped endpoint keeps its address
    assert reserved_ports(tmp_path / "endpoints", but="t-other") == {port}

    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(EndpointError, match=f"port {port} .*taken by another process"):
            endpoints.start("t-taken")
        assert not endpoints.get("t-taken").running
    finally:
        squatter.close()
    assert endpoints.start("t-taken").scoring_uri == info.scoring_uri  # freed: same address


def test_allocated_ports_are_free_and_avoid_reserved_ones() -> None:
    taken = {allocate_port(set()) for _ in range(5)}
    port = allocate_port(taken)
    assert port not in taken and port_is_free(port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free(port)


def test_replay_key_files_traffic_under_its_day(endpoints, tmp_path):
    endpoints.create_or_update_deployment("t-replay", "blue", saved_model(tmp_path / "m"), "m", "1")
    keys = endpoints.get_keys("t-replay")
    assert set(keys) == {"primary", "secondary", "replay"} and len(set(keys.values())) == 3
    uri = endpoints.get("t-replay").scoring_uri
    scoring = {"Authorization": f"Bearer {keys['primary']}", "x-mlops-event-date": "2013-07-15"}
    refused = httpx.post(uri, json=payload([[1.0, 1.0]]), headers=scoring)
    assert refused.status_code == 403, refused.text
    replay = {**scoring, "x-mlops-replay-key": keys["replay"], "x-request-id": "replayed"}
    assert httpx.post(uri, json=payload([[1.0, 1.0]]), headers=replay).status_code == 200
    log_dir = endpoints.get("t-replay").extra["inference_log_dir"]
    assert [r["request_id"] for r in iter_records(log_dir, day="2013-07-15")] == ["replayed"]

    rotated = endpoints.regenerate_key("t-replay", "replay")
    assert rotated["replay"] != keys["replay"] and rotated["primary"] == keys["primary"]
    stale = httpx.post(uri, json=payload([[1.0, 1.0]]), headers=replay)
    assert stale.status_code == 403


def test_an_endpoint_from_before_replay_keys_gets_one(endpoints, tmp_path):
    endpoints.create_or_update_deployment("t-old", "blue", saved_model(tmp_path / "m"), "m", "1")
    config_file = Path(tmp_path / "endpoints" / "t-old" / "config.json")
    config = json.loads(config_file.read_text())
    del config["keys"]["replay"]
    config_file.write_text(json.dumps(config))
    keys = endpoints.get_keys("t-old")
    assert keys["replay"] and json.loads(config_file.read_text())["keys"] == keys
    assert endpoints.get("t-old").running  # and reloaded: the new key works at once
    uri = endpoints.get("t-old").scoring_uri
    replay = {
        "Authorization": f"Bearer {keys['primary']}",
        "x-mlops-event-date": "2013-07-15",
        "x-mlops-replay-key": keys["replay"],
    }
    assert httpx.post(uri, json=payload([[1.0, 1.0]]), headers=replay).status_code == 200

    endpoints.stop("t-old")  # a stopped endpoint gets its key without being started
    config = json.loads(config_file.read_text())
    del config["keys"]["replay"]
    config_file.write_text(json.dumps(config))
    assert endpoints.get_keys("t-old")["replay"] and not endpoints.get("t-old").running
