"""Identity from the environment and the policy prod decisions are taken under.

Protects: the local caller is the OS account of the effective uid, not
`$USER`/`$LOGNAME`; the Entra caller is the token's `oid`; the policy maps
identities to users and validates the mapping; `--as` only narrows; a
`$MLOPS_RBAC_POLICY` swap is refused unless the packaged policy allows it.
"""

from __future__ import annotations

import base64
import json
import pwd
import shutil
import sys
import types

import pytest

from mlops_core.governance import (
    Caller,
    IdentityRefused,
    Policy,
    PolicyError,
    PolicyOverrideRefused,
    act_as,
)
from mlops_core.governance import policy as policy_module
from mlops_core.governance.identity import jwt_claims
from mlops_core.governance.trust import policy_for_decisions
from resources.identity import EntraIdentity, LocalIdentity, os_account
from tests.governance.helpers import write_policy


def token(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


def test_the_local_caller_is_the_effective_uid_not_an_env_var(monkeypatch):
    import os

    monkeypatch.setenv("USER", "priya-os")
    monkeypatch.setenv("LOGNAME", "priya-os")
    expected = pwd.getpwuid(os.geteuid()).pw_name
    assert os_account() == expected
    assert LocalIdentity().caller() == Caller("os", expected)


def test_the_entra_caller_is_the_token_oid(monkeypatch):
    issued = token({"oid": "0000-aa", "upn": "priya@contoso.com", "tid": "t"})

    class FakeCredential:
        def get_token(self, scope: str):
            assert scope == "https://management.azure.com/.default"
            return types.SimpleNamespace(token=issued)

    fake = types.SimpleNamespace(DefaultAzureCredential=FakeCredential)
    monkeypatch.setitem(sys.modules, "azure.identity", fake)
    caller = EntraIdentity().caller()
    assert (caller.principal, caller.upn) == ("entra:0000-aa", "priya@contoso.com")
    with pytest.raises(ValueError, match="no 'oid' claim"):
        Caller.from_token(token({"sub": "x"}))
    for bad in ("not-a-jwt", "a.!!!.c"):
        with pytest.raises(ValueError, match="not a JWT"):
            jwt_claims(bad)


def test_identities_map_to_users_and_as_only_narrows(tmp_path):
    def edit(raw: dict) -> None:
        raw["os_users"] = {"pat": ["priya", "alice"], "sam.k": "sam"}
        raw["entra_ids"] = {"0000-aa": "olivia", "tess@contoso.com": ["tess"]}

    policy = Policy.load(write_policy(tmp_path / "p.yaml", edit))
    assert act_as(policy, Caller.os_account("sam.k")) == "sam"
    assert act_as(policy, Caller.os_account("pat"), "alice") == "alice"
    assert act_as(policy, Caller("entra", "0000-aa")) == "olivia"
    assert act_as(policy, Caller("entra", "9999", "tess@contoso.com")) == "tess"
    refusals = [
        (Caller.os_account("pat"), None, "choose one with --as"),
        (Caller.os_account("sam.k"), "priya", "never name someone else"),
        (Caller.os_account("sam.k"), "", "empty --as"),
        (Caller.os_account("nobody"), None, "under `os_users:`"),
        (Caller("entra", "9999"), None, "under `entra_ids:`"),
    ]
    for caller, requested, message in refusals:
        with pytest.raises(IdentityRefused, match=message):
            act_as(policy, caller, requested)


def test_the_identity_mapping_is_validated(tmp_path):
    path = write_policy(tmp_path / "p.yaml", lambda raw: raw["os_users"].update(x="mallory"))
    with pytest.raises(PolicyError, match="os_users 'x': unknown user 'mallory'"):
        Policy.load(path)
    path = write_policy(tmp_path / "p.yaml", lambda raw: raw.update(staging_minimums={"x": 1}))
    with pytest.raises(PolicyError, match="staging_minimums: unknown key 'x'"):
        Policy.load(path)


def test_a_policy_swap_is_refused_unless_the_packaged_policy_allows_it(tmp_path, monkeypatch):
    packaged = Policy.packaged()
    assert policy_for_decisions().sha256 == packaged.sha256
    own = write_policy(tmp_path / "own.yaml")
    monkeypatch.setenv("MLOPS_RBAC_POLICY", str(own))
    assert Policy.load().source == str(own)  # reading still follows the variable
    with pytest.raises(PolicyOverrideRefused) as err:
        policy_for_decisions()
    assert err.value.policy.sha256 != packaged.sha256 and "MLOPS_RBAC_POLICY" in str(err.value)
    assert policy_for_decisions(str(own)).source == str(own)  # configured in code: the choice
    same = tmp_path / "same.yaml"
    shutil.copy(policy_module.DEFAULT_POLICY_PATH, same)
    monkeypatch.setenv("MLOPS_RBAC_POLICY", str(same))
    assert policy_for_decisions().sha256 == packaged.sha256  # same content: no swap
    lenient = write_policy(
        tmp_path / "lenient.yaml", lambda r: r.update(allow_policy_override=True)
    )
    monkeypatch.setattr(policy_module, "DEFAULT_POLICY_PATH", lenient)
    monkeypatch.setenv("MLOPS_RBAC_POLICY", str(own))
    assert policy_for_decisions().source == str(own)
