"""The `mlops endpoint` commands against a real scoring server under a temporary MLOPS_HOME.

Protects: traffic-split validation before anything is touched, and that showing
keys, rotating them, shifting traffic and stopping or starting servers are
checked against the RBAC policy for the caller's own OS account and audited,
refusals included, never with a key value in the trail; that `endpoint list`, in a
new process too, says a stopped endpoint is stopped (at its kept address); and that
list and show name the registry each deployed version belongs to. Shares the stores and
the identity injection of `tests/test_cli.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from resources.endpoint_local import LocalOnlineEndpoints
from tests.test_cli import MODEL, as_os, env, home, run, run_json  # noqa: F401 - fixtures

ENDPOINT = "t-online"


@pytest.fixture(scope="module")
def endpoint(home):  # noqa: F811 - the imported fixture
    """A real scoring server with blue (all traffic) and green deployments; stopped at the end."""
    endpoints = LocalOnlineEndpoints(root=str(home / "endpoints"))
    try:
        endpoints.create_or_update_deployment(ENDPOINT, "blue", str(home / "model"), MODEL, "1")
        endpoints.create_or_update_deployment(ENDPOINT, "green", str(home / "model"), MODEL, "2")
        yield endpoints
    finally:
        endpoints.stop(ENDPOINT)


def mlops(*argv: str) -> str:
    """Run the CLI in its own process (under this test's MLOPS_HOME); its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "mlops_cli", *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- endpoints ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [(["blue=abc"], "must be an integer"), (["blue=60", "green=30"], "sum to 100, not 90"),
     (["blue"], "DEPLOYMENT=PERCENT"), (["blue=50", "blue=50"], "appears twice"),
     (["blue=150"], "from 0 to 100")],
)  # fmt: skip
def test_bad_traffic_split_is_a_usage_error(capsys, spec, message):
    code, _, err = run(capsys, "endpoint", "traffic", ENDPOINT, *spec, "--as", "sam")
    assert code == 2 and message in err


def test_endpoint_list_show_and_keys(capsys, endpoint, monkeypatch):
    [listed] = run_json(capsys, "endpoint", "list")
    assert listed["name"] == ENDPOINT and listed["running"]
    assert listed["scoring_uri"].startswith("http://127.0.0.1:")
    assert listed["deployments"]["green"]["model_version"] == "2"
    assert run_json(capsys, "endpoint", "show", ENDPOINT)["live_deployment"] == "blue"
    as_os(monkeypatch, "alice")
    code, out, err = run(capsys, "endpoint", "keys", ENDPOINT)
    assert code == 1 and out == "" and "may not manage_endpoint_keys in prod" in err
    as_os(monkeypatch, "sam")
    keys = run_json(capsys, "endpoint", "keys", ENDPOINT)
    assert {"primary", "secondary"} <= set(keys) and keys["primary"] != keys["secondary"]
    audited = run_json(capsys, "audit", "--action", "key_show")
    assert [(r["actor"], r["caller"], r["outcome"]) for r in audited] == [
        ("sam", "os:sam-os", "succeeded"), ("alice", "os:alice-os", "denied")
    ]  # fmt: skip
    assert not set(keys.values()) & set(json.dumps(audited).split('"'))  # never a key value


def test_traffic_shift_is_permission_checked_and_audited(capsys, endpoint, monkeypatch):
    as_os(monkeypatch, "alice")
    code, _, err = run(capsys, "endpoint", "traffic", ENDPOINT, "green=100")
    assert code == 1 and "alice (data_scientist) may not deploy_endpoint in prod" in err
    as_os(monkeypatch, "sam")
    split = ["blue=90", "green=10"]
    moved = run_json(capsys, "endpoint", "traffic", ENDPOINT, *split, "--as", "sam")
    assert moved["traffic"] == {"blue": 90, "green": 10}
    code, _, err = run(capsys, "endpoint", "traffic", ENDPOINT, "purple=100")
    assert code == 1 and "no deployment ['purple']" in err
    back = run_json(capsys, "endpoint", "traffic", ENDPOINT, "blue=100")
    assert back["traffic"] == {"blue": 100, "green": 0}
    audited = run_json(capsys, "audit", "--action", "set_traffic", "--target", ENDPOINT)
    assert [r["outcome"] for r in audited] == ["succeeded", "failed", "succeeded", "denied"]


def test_key_rotation_is_permission_checked_and_audited(capsys, endpoint, monkeypatch):
    before = endpoint.get_keys(ENDPOINT)
    as_os(monkeypatch, "alice")
    code, _, err = run(capsys, "endpoint", "regenerate-key", ENDPOINT, "--key-type", "primary")
    assert code == 1 and "manage_endpoint_keys" in err
    assert endpoint.get_keys(ENDPOINT) == before
    as_os(monkeypatch, "sam")
    assert run(capsys, "endpoint", "regenerate-key", ENDPOINT, "--key-type", "secondary")[0] == 0
    after = endpoint.get_keys(ENDPOINT)
    assert after["primary"] == before["primary"] and after["secondary"] != before["secondary"]
    audited = run_json(capsys, "audit", "--action", "key_rotate")
    assert [(r["actor"], r["outcome"]) for r in audited] == [("sam", "succeeded"),
                                                             ("alice", "denied")]  # fmt: skip
    assert all(r["caller"] and r["policy_hash"] for r in audited)
    assert not {before["secondary"], after["secondary"]} & set(json.dumps(audited).split('"'))


def test_serve_stop_is_permission_checked_and_audited(capsys, endpoint, monkeypatch):
    as_os(monkeypatch, "alice")
    code, _, err = run(capsys, "endpoint", "serve", "--stop")
    assert code == 1 and "may not deploy_endpoint in prod" in err
    uri = endpoint.get(ENDPOINT).scoring_uri
    assert endpoint.get(ENDPOINT).running  # still serving
    as_os(monkeypatch, "sam")
    [stopped] = run_json(capsys, "endpoint", "serve", "--stop")
    assert not stopped["running"] and stopped["extra"]["state"] == "stopped"
    assert stopped["scoring_uri"] == uri  # the endpoint's address, kept for its restart
    [listed] = json.loads(mlops("endpoint", "list", "-o", "json"))  # a new process, as a person
    assert (listed["running"], listed["extra"]["state"], listed["scoring_uri"]) == (
        False, "stopped", uri
    )  # fmt: skip
    code, table, _ = run(capsys, "endpoint", "list")
    assert code == 0 and ENDPOINT in table and " false " in table and " stopped " in table
    [served] = run_json(capsys, "endpoint", "serve", ENDPOINT)
    assert served["running"] and served["scoring_uri"] == uri
    code, _, err = run(capsys, "endpoint", "serve", "nope")
    assert code == 1 and "does not exist" in err
    audited = run_json(capsys, "audit", "--target", ENDPOINT, "--limit", "3")
    assert [(r["action"], r["actor"], r["outcome"]) for r in audited] == [
        ("serve_start", "sam", "succeeded"), ("serve_stop", "sam", "succeeded"),
        ("serve_stop", "alice", "denied"),
    ]  # fmt: skip


def test_list_and_show_name_the_registry_of_each_version(capsys, endpoint, home):  # noqa: F811
    endpoint.create_or_update_deployment(
        ENDPOINT, "green", str(home / "model"), MODEL, "2", registry="prod", source_version="4"
    )
    shown = run_json(capsys, "endpoint", "show", ENDPOINT)["deployments"]
    assert (shown["green"]["registry"], shown["green"]["source_version"]) == ("prod", "4")
    assert shown["green"]["version_label"] == "prod v2 (from dev v4)"
    assert shown["blue"]["version_label"] == "v1"  # deployed without a registry: as before
    code, table, _ = run(capsys, "endpoint", "list")
    assert code == 0 and f"green: {MODEL} prod v2 (from dev v4)" in table
    assert f"blue: {MODEL} v1" in table and " running " in table
