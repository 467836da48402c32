"""The local online endpoint resource against real scoring-server processes: config and lifecycle.

Protects: the first deployment takes all traffic and later ones none; traffic
and key changes reach the running server by reload; a bad change is refused
before it replaces a working config; stop() ends the process by PID; the
one-process server.json shape still reads (and scaling replaces that server once);
a reused PID is never taken for (or signalled as) a worker. Workers under load
are in `test_endpoint_workers.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from resources.endpoint import EndpointError
from resources.endpoint_processes import free_port
from tests.resources.endpoint_helpers import gone, payload, ready, saved_model


def test_deploy_traffic_keys_and_stop(endpoints, tmp_path):
    blue = endpoints.create_or_update_deployment(
        "t-ep", "blue", saved_model(tmp_path / "m1"), "m", "1"
    )
    assert blue.traffic == {"blue": 100} and blue.running
    green = endpoints.create_or_update_deployment(
        "t-ep", "green", saved_model(tmp_path / "m2", flip=True), "m", "2"
    )
    assert green.traffic == {"blue": 100, "green": 0}
    assert endpoints.invoke("t-ep", payload([[30.0, 1.0]])).json() == [1]
    assert endpoints.invoke("t-ep", payload([[30.0, 1.0]]), deployment="green").json() == [0]

    endpoints.set_traffic("t-ep", {"green": 100})
    response = endpoints.invoke("t-ep", payload([[30.0, 1.0]]))
    assert response.json() == [0] and response.headers["azureml-model-deployment"] == "green"

    old = endpoints.get_keys("t-ep")
    new = endpoints.regenerate_key("t-ep", "primary")
    assert new["primary"] != old["primary"] and new["secondary"] == old["secondary"]
    assert endpoints.invoke("t-ep", payload([[1.0, 1.0]])).status_code == 200  # new key works

    pid = endpoints.get("t-ep").extra["pid"]
    endpoints.stop("t-ep")
    assert not endpoints.get("t-ep").running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_refused_changes_keep_the_running_config(endpoints, tmp_path):
    endpoints.create_or_update_deployment("t-ep2", "blue", saved_model(tmp_path / "m1"), "m", "1")
    with pytest.raises(EndpointError, match="no deployment \\['purple'\\]"):
        endpoints.set_traffic("t-ep2", {"purple": 100})
    with pytest.raises(ValueError, match="sum to 100"):
        endpoints.set_traffic("t-ep2", {"blue": 50})
    with pytest.raises(EndpointError, match="move its traffic first"):
        endpoints.delete_deployment("t-ep2", "blue")
    with pytest.raises(EndpointError, match="does not exist"):
        endpoints.get("nope")
    assert endpoints.get("t-ep2").traffic == {"blue": 100}
    assert endpoints.invoke("t-ep2", payload([[30.0, 1.0]])).status_code == 200


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_legacy_server_json_limits_and_start(endpoints, tmp_path):
    with pytest.raises(EndpointError, match="max_workers=4"):
        endpoints.scale("t-legacy", 5)
    with pytest.raises(EndpointError, match="1 to max_workers"):
        endpoints.scale("t-legacy", 0)
    with pytest.raises(EndpointError, match="does not exist"):
        endpoints.scale("t-legacy", 2)

    # An endpoint left by the one-process resource: {"pid", "port"} and no --reuse-port.
    folder = tmp_path / "endpoints" / "t-legacy"
    folder.mkdir(parents=True)
    keys = {"primary": "legacy-primary-key", "secondary": "legacy-secondary-key"}
    config = {
        "endpoint": "t-legacy",
        "deployments": {
            "blue": {
                "model_path": saved_model(tmp_path / "m"),
                "model_name": "m",
                "model_version": "1",
            }
        },
        "traffic": {"blue": 100},
        "mirror_traffic": {},
        "keys": keys,
        "inference_log_dir": str(folder / "inference_log"),
    }
    (folder / "config.json").write_text(json.dumps(config))
    port = free_port()
    with open(folder / "server.log", "ab") as log:
        legacy = subprocess.Popen(
            [sys.executable, "-m", "serving", "--config", str(folder / "config.json"),
             "--port", str(port), "--log-level", "warning"],
            stdout=log,
            stderr=log,
        )  # fmt: skip
    try:
        (folder / "server.json").write_text(json.dumps({"pid": legacy.pid, "port": port}))
        deadline = time.monotonic() + 60
        while not ready(port):
            assert legacy.poll() is None and time.monotonic() < deadline, "legacy server died"
            time.sleep(0.2)
        info = endpoints.get("t-legacy")
        assert info.running and info.workers == 1 and info.extra["pids"] == [legacy.pid]
        assert (
            endpoints.regenerate_key("t-legacy", "secondary")["secondary"] != (keys["secondary"])
        )  # reloaded through the legacy port with the key it holds
        details = {"Authorization": f"Bearer {keys['primary']}"}  # /health details need a key
        assert httpx.get(f"http://127.0.0.1:{port}/health", headers=details).json()["reloads"] == 1

        scaled = endpoints.scale("t-legacy", 2)  # cannot share its port: replaced once
        assert scaled.workers == 2 and legacy.pid not in scaled.extra["pids"]
        assert legacy.wait(timeout=30) is not None
        assert endpoints.invoke("t-legacy", payload([[30.0, 1.0]])).json() == [1]
        state = json.loads((folder / "server.json").read_text())
        assert state["target_workers"] == 2 and len(state["workers"]) == 2
        assert {"pid", "started", "admin_port"} <= set(state["workers"][0])

        endpoints.stop("t-legacy")
        assert all(gone(pid) for pid in scaled.extra["pids"])
        restarted = endpoints.start("t-legacy")  # the configured count comes back
        assert restarted.workers == 2 and restarted.running
        assert set(restarted.extra["pids"]).isdisjoint(scaled.extra["pids"])
    finally:
        if legacy.poll() is None:
            legacy.kill()
            legacy.wait(timeout=30)


def test_a_reused_pid_is_not_taken_for_a_worker(endpoints, tmp_path):
    folder = tmp_path / "endpoints" / "t-stale"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps({"endpoint": "t-stale", "deployments": {}, "traffic": {}, "keys": {},
                    "inference_log_dir": str(folder / "log")})
    )  # fmt: skip
    (folder / "server.json").write_text(json.dumps({"pid": os.getpid(), "port": 1}))
    info = endpoints.get("t-stale")  # this test process is alive but is no scoring server
    assert not info.running and info.workers == 0 and info.extra["state"] == "down"
    assert info.scoring_uri == "http://127.0.0.1:1/score"  # the recorded address, not served
    endpoints.stop("t-stale")  # and stop() must not signal it
