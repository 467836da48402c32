"""What `get`/`list` say about a local endpoint after stop, crash, hang and restart.

Protects (issue 9, items 3 and 7): `running` is whether a worker answers now, asked of the
workers by every caller (a fresh resource, as a new `mlops` process is, sees the same), not
read from server.json; `scoring_uri` is the endpoint's kept address whether it runs or not;
a stopped endpoint stays stopped through traffic, key and scale changes until `start` (or a
deploy); crashed workers are healed by the next change; and the registry a deployed version
belongs to (with the dev version it was promoted from) is kept with the deployment and shown
by the resource, `/health` and every answer, while deployments recorded without it read `v2`.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from resources.endpoint import EndpointError
from resources.endpoint_local import LocalOnlineEndpoints
from tests.resources.endpoint_helpers import payload, saved_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _wait(endpoints: LocalOnlineEndpoints, name: str, state: str) -> None:
    deadline = time.monotonic() + 30
    while endpoints.get(name).extra["state"] != state:
        assert time.monotonic() < deadline, f"{name} never became {state}"
        time.sleep(0.05)


def test_get_tells_the_true_state_after_stop_hang_crash_and_restart(endpoints, tmp_path):
    info = endpoints.create_or_update_deployment(
        "t-state", "blue", saved_model(tmp_path / "m"), "m", "1"
    )
    uri = info.scoring_uri
    assert info.running and info.extra["state"] == "running" and uri

    endpoints.stop("t-state")
    fresh = LocalOnlineEndpoints(root=endpoints.root)  # what a new `mlops` process sees
    for view in (endpoints.get("t-state"), fresh.get("t-state"), *fresh.list()):
        assert (view.running, view.extra["state"], view.workers) == (False, "stopped", 0)
        assert view.scoring_uri == uri  # the kept address, not None
    endpoints.regenerate_key("t-state", "secondary")  # changes keep a stopped endpoint stopped
    endpoints.set_traffic("t-state", {"blue": 100})
    scaled = endpoints.scale("t-state", 2)
    assert not scaled.running and scaled.extra["target_workers"] == 2
    with pytest.raises(EndpointError, match="not running"):
        endpoints.invoke("t-state", payload([[30.0, 1.0]]))

    started = fresh.start("t-state")  # the count set while stopped, at the same address
    assert started.running and started.workers == 2 and started.scoring_uri == uri
    pids = started.extra["pids"]
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)  # hung: alive, recorded, but answering nothing
        hung = endpoints.get("t-state")
        assert (hung.running, hung.extra["state"], hung.workers) == (False, "down", 2)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert endpoints.get("t-state").running

    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # crashed: not stopped on purpose
    _wait(endpoints, "t-state", "down")
    assert endpoints.get("t-state").scoring_uri == uri
    healed = endpoints.set_traffic("t-state", {"blue": 100})  # a change heals a crash
    assert healed.running and healed.workers == 2
    assert endpoints.invoke("t-state", payload([[30.0, 1.0]])).json() == [1]


def test_the_registry_of_a_version_is_kept_and_shown(endpoints, tmp_path):
    model = saved_model(tmp_path / "m")
    endpoints.create_or_update_deployment(
        "t-reg", "blue", model, "m", "2", registry="prod", source_version="3"
    )
    info = endpoints.create_or_update_deployment("t-reg", "green", model, "m", "2")
    blue, green = info.deployments["blue"], info.deployments["green"]
    assert (blue["registry"], blue["source_version"]) == ("prod", "3")
    assert blue["version_label"] == "prod v2 (from dev v3)"
    assert "registry" not in green and green["version_label"] == "v2"  # as before registries
    assert Path(blue["model_path"]).name == "blue-m-prod-v2"  # dev v2 is another model

    key = endpoints.get_keys("t-reg")["primary"]
    admin = info.extra["admin_urls"][0]
    health = httpx.get(f"{admin}/health", headers={"Authorization": f"Bearer {key}"}).json()
    assert health["deployments"]["blue"]["version_label"] == "prod v2 (from dev v3)"
    assert health["deployments"]["green"]["version_label"] == "v2"
    answer = endpoints.invoke("t-reg", payload([[30.0, 1.0]]))
    assert answer.headers["x-mlops-model"] == "m prod v2 (from dev v3)"
