"""The persona RBAC policy: the packaged MLOps v2 matrix, strict validation, Azure role export.

Protects the rights the product enforces (who may approve, promote, deploy,
score) and the guarantee that a typo in the policy file fails loudly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_core.governance import ENVIRONMENTS, PERMISSIONS, PermissionDenied, Policy, PolicyError
from mlops_core.governance.policy import DEFAULT_POLICY_PATH

PERSONAS = {
    "data_scientist",
    "data_analyst",
    "model_tester",
    "business_stakeholder",
    "project_lead",
    "product_owner",
    "platform_support",
    "model_end_user",
    "cicd_process",
    "monitoring_process",
    "data_governance_process",
}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


def test_packaged_policy_has_every_persona_and_user(policy):
    assert set(policy.personas) == PERSONAS
    assert set(policy.users.values()) == PERSONAS
    assert policy.users["alice"] == "data_scientist"
    assert policy.users["ci-bot"] == "cicd_process"
    assert policy.source == str(DEFAULT_POLICY_PATH)


# (user, permission, environment, expected)
CASES = [
    ("alice", "train_model", "preprod", True),
    ("alice", "register_model", "preprod", True),
    ("alice", "read_data", "prod", True),
    ("alice", "train_model", "prod", False),
    ("alice", "approve_model", "prod", False),
    ("alice", "approve_model", "preprod", False),
    ("dana", "label_data", "preprod", True),
    ("dana", "write_data", "prod", False),
    ("tess", "approve_model", "preprod", True),
    ("tess", "approve_model", "prod", False),
    ("bianca", "read_monitoring", "prod", True),
    ("bianca", "approve_model", "prod", False),
    ("priya", "approve_model", "prod", True),
    ("priya", "manage_budget", "prod", True),
    ("priya", "deploy_endpoint", "prod", False),
    ("olivia", "approve_model", "prod", True),
    ("sam", "manage_endpoint_keys", "prod", True),
    ("sam", "rollback_deployment", "preprod", True),
    ("sam", "approve_model", "prod", False),
    ("eve", "score_endpoint", "prod", True),
    ("eve", "read_data", "prod", False),
    ("eve", "score_endpoint", "preprod", False),
    ("ci-bot", "promote_model", "prod", True),
    ("ci-bot", "deploy_endpoint", "prod", True),
    ("ci-bot", "approve_model", "prod", False),
    ("ci-bot", "approve_model", "preprod", False),
    ("monitor-bot", "read_monitoring", "prod", True),
    ("monitor-bot", "rollback_deployment", "prod", True),
    ("monitor-bot", "deploy_endpoint", "prod", False),
    ("gov-bot", "manage_policy", "prod", True),
    ("gov-bot", "read_registry", "preprod", True),
    ("gov-bot", "write_data", "prod", False),
]


@pytest.mark.parametrize(("user", "permission", "environment", "expected"), CASES)
def test_permission_table(policy, user, permission, environment, expected):
    decision = policy.allowed(user, permission, environment)
    assert decision.allowed is expected, decision.reason
    assert decision.persona == policy.users[user]
    verb = "may" if expected else "may not"
    assert f"{user} ({decision.persona}) {verb} {permission} in {environment}" in decision.reason


def test_table_covers_every_persona(policy):
    assert {policy.users[user] for user, *_ in CASES} == PERSONAS


def test_denial_reason_names_who_may(policy):
    decision = policy.allowed("alice", "approve_model", "prod")
    assert decision.reason == (
        "alice (data_scientist) may not approve_model in prod; "
        "personas allowed: project_lead, product_owner"
    )
    with pytest.raises(PermissionDenied, match="personas allowed: project_lead, product_owner"):
        policy.require("alice", "approve_model", "prod")
    assert policy.require("priya", "approve_model", "prod").allowed


def test_end_user_only_scores_and_automation_never_approves(policy):
    rows = {(r["persona"], r["environment"]): r["permissions"] for r in policy.matrix()}
    assert len(rows) == len(PERSONAS) * len(ENVIRONMENTS)
    assert rows[("model_end_user", "prod")] == ["score_endpoint"]
    assert rows[("model_end_user", "preprod")] == []
    for env in ENVIRONMENTS:
        for process in ("cicd_process", "monitoring_process", "data_governance_process"):
            assert "approve_model" not in rows[(process, env)]
    assert all(set(perms) <= set(PERMISSIONS) for perms in rows.values())


def test_unknown_user_is_denied(policy):
    decision = policy.allowed("mallory", "score_endpoint", "prod")
    assert not decision.allowed
    assert "mallory is not a user in the RBAC policy" in decision.reason
    with pytest.raises(PermissionDenied, match="'mallory' is not a user in the RBAC policy"):
        policy.persona_of("mallory")
    with pytest.raises(PermissionDenied, match="mallory"):
        policy.require("mallory", "score_endpoint", "prod")


def test_unknown_permission_or_environment_in_a_query(policy):
    with pytest.raises(PolicyError, match="unknown permission 'approve'"):
        policy.allowed("priya", "approve", "prod")
    with pytest.raises(PolicyError, match="unknown environment 'staging'"):
        policy.allowed("priya", "approve_model", "staging")


def _write_variant(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    edit(raw)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["users"].update(mallory="hacker"), "user 'mallory': unknown persona 'hacker'"),
        (
            lambda r: r["personas"]["data_scientist"]["prod"].append("delete_everything"),
            "persona 'data_scientist' prod: unknown permission 'delete_everything'",
        ),
        (
            lambda r: r["personas"]["model_tester"].update(staging=["read_data"]),
            "persona 'model_tester': unknown environment 'staging'",
        ),
        (
            lambda r: r["personas"]["model_tester"].pop("prod"),
            "persona 'model_tester': lists no prod",
        ),
        (
            lambda r: r["azure_roles"].update(ghost={"prod": []}),
            "azure_roles: unknown persona 'ghost'",
        ),
        (
            lambda r: r["azure_roles"]["data_scientist"]["prod"].append({"role": "Reader"}),
            r"azure_roles 'data_scientist' prod\[2\]: needs 'scope'",
        ),
        (lambda r: r.update(user={"bob": "data_scientist"}), "unknown top-level key 'user'"),
        (
            lambda r: r["personas"]["model_tester"].update(prod="read_data"),
            "persona 'model_tester' prod: Input should be a valid list",
        ),
        (lambda r: r["personas"].update(ghost=["read_data"]), "persona 'ghost': must be a mapping"),
        (
            lambda r: r["azure_roles"]["data_scientist"].update(staging=[]),
            "azure_roles 'data_scientist': unknown environment 'staging'",
        ),
        (lambda r: r["users"].update({123: "data_scientist"}), "users: key 123: .* valid string"),
        (lambda r: r.update(personas={}), "personas: Dictionary should have at least 1 item"),
    ],
)
def test_bad_policy_files_name_the_problem(tmp_path, edit, message):
    path = _write_variant(tmp_path, edit)
    with pytest.raises(PolicyError, match=message) as err:
        Policy.load(path)
    assert str(path) in str(err.value)


def test_every_problem_in_a_file_is_named_at_once(tmp_path):
    def edit(raw):
        raw["personas"]["data_analyst"].pop("preprod")
        raw["personas"]["model_tester"]["prod"].append("approve_everything")

    with pytest.raises(PolicyError) as err:
        Policy.load(_write_variant(tmp_path, edit))
    problems = str(err.value).split(": ", 1)[1].split("; ")
    assert problems[0] == "persona 'data_analyst': lists no preprod (use [] for none)"
    assert problems[1].startswith(
        "persona 'model_tester' prod: unknown permission 'approve_everything' (known: read_data,"
    )


def test_empty_users_and_azure_roles_sections_are_allowed(tmp_path):
    path = _write_variant(tmp_path, lambda r: r.update(users=None, azure_roles=None))
    policy = Policy.load(path)
    assert dict(policy.users) == {} and policy.azure_role_assignments() == []
    assert not policy.allowed("alice", "read_data", "prod").allowed


def test_unreadable_or_invalid_yaml(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the RBAC policy"):
        Policy.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("personas: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        Policy.load(bad)
    bad.write_text("- a list\n")
    with pytest.raises(PolicyError, match="the policy must be a YAML mapping"):
        Policy.load(bad)


def test_env_var_overrides_the_policy_path(tmp_path, monkeypatch):
    path = _write_variant(tmp_path, lambda r: r["users"].update(zoe="project_lead"))
    monkeypatch.setenv("MLOPS_RBAC_POLICY", str(path))
    policy = Policy.load()
    assert policy.source == str(path)
    assert policy.allowed("zoe", "approve_model", "prod").allowed


def test_azure_role_export_covers_every_persona_and_fills_scopes(policy, monkeypatch):
    ws = "/subscriptions/s1/resourceGroups/rg-prod/providers/Microsoft.MachineLearningServices"
    monkeypatch.setenv("PROD_WORKSPACE_SCOPE", ws)
    monkeypatch.setenv("PREPROD_STORAGE_SCOPE", "/subscriptions/s1/storage-preprod")
    monkeypatch.delenv("PROD_RG_SCOPE", raising=False)
    rows = policy.azure_role_assignments({"project_lead": "00000000-aaaa"})

    assert {r["persona"] for r in rows} == PERSONAS
    assert all(set(r) == {"assignee", "role", "scope", "persona", "environment"} for r in rows)
    assert {r["environment"] for r in rows} == set(ENVIRONMENTS)
    ds_prod = [r for r in rows if r["persona"] == "data_scientist" and r["environment"] == "prod"]
    assert {"role": "Reader", "scope": ws} in [
        {"role": r["role"], "scope": r["scope"]} for r in ds_prod
    ]
    assert any(r["scope"] == "/subscriptions/s1/storage-preprod" for r in rows)
    lead = [r for r in rows if r["persona"] == "project_lead"]
    assert {r["assignee"] for r in lead} == {"00000000-aaaa"}
    assert "${PROD_RG_SCOPE}" in {r["scope"] for r in lead}  # unset: left visible
    cicd = {r["assignee"] for r in rows if r["persona"] == "cicd_process"}
    assert cicd == {"${CICD_PROCESS_PRINCIPAL_ID}"}


def test_import_needs_neither_dagster_nor_mlflow():
    code = (
        "import sys, mlops_core.governance as g; g.Policy.load(); "
        "print(sorted(m for m in ('dagster', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "[]"
