"""The Azure infrastructure as code (deploy/azure/) checked offline, and the roles.bicep
parameters generated from the RBAC policy (mlops_core/governance/azure_iac.py).

Protects, without a Bicep compiler (tests/deploy/bicep.py reads the declarations): the
generated parameters and the dev/prod parameter files supply every required param with
the right JSON type and nothing unknown; every policy role resolves to a well-formed
built-in role GUID, and role GUIDs written in the templates match the shipped list; every
resource type uses a known-good API version; main.bicep's modules exist and get only the
params they declare; the lake has a hierarchical namespace and a WORM audit anchor
container; compute scales to zero. Negative cases prove each check can fail. `bicep build`
runs where a `bicep` binary exists; the what-if against a subscription is `azure_live`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_cli import main
from mlops_core.governance.azure_iac import (
    GUID,
    IacError,
    builtin_roles,
    from_policy,
    role_assignments,
)
from mlops_core.governance.policy import Policy
from tests.deploy.bicep import check_values, code, modules, params, resources, user_types

AZURE = Path(__file__).resolve().parents[2] / "deploy" / "azure"
TEMPLATES = [AZURE / "main.bicep", *sorted((AZURE / "modules").glob("*.bicep"))]
ROLES = (AZURE / "modules" / "roles.bicep").read_text()
STORAGE = "Microsoft.Storage/storageAccounts"
CONTAINERS = f"{STORAGE}/blobServices/containers"
AML = "Microsoft.MachineLearningServices/workspaces"
KNOWN_API_VERSIONS = {  # GA versions of the Azure resource reference
    STORAGE: "2023-05-01",
    f"{STORAGE}/blobServices": "2023-05-01",
    CONTAINERS: "2023-05-01",
    f"{CONTAINERS}/immutabilityPolicies": "2023-05-01",
    "Microsoft.KeyVault/vaults": "2023-07-01",
    "Microsoft.ContainerRegistry/registries": "2023-07-01",
    "Microsoft.OperationalInsights/workspaces": "2023-09-01",
    "Microsoft.Insights/components": "2020-02-02",
    AML: "2024-04-01",
    f"{AML}/computes": "2024-04-01",
    f"{AML}/onlineEndpoints": "2024-04-01",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
}
PERSONAS = list(Policy.packaged().azure_roles)
PERSONA_IDS = {p: f"00000000-0000-4000-8000-{i:012d}" for i, p in enumerate(PERSONAS)}


def values_of(document: dict) -> dict:
    return {name: entry["value"] for name, entry in document["parameters"].items()}


def env_values(env: str) -> dict:
    return values_of(json.loads((AZURE / f"parameters.{env}.json").read_text()))


def generated(env: str, **kwargs) -> dict:
    kwargs.setdefault("principal_ids", PERSONA_IDS)
    return from_policy(Policy.packaged(), env, AZURE / f"parameters.{env}.json", **kwargs)


# -- the roles the policy uses ---------------------------------------------------------------
def test_every_policy_role_resolves_to_a_distinct_wellformed_guid():
    roles = builtin_roles()
    used = {row["role"] for row in Policy.packaged().azure_role_assignments()}
    assert used and used <= set(roles), used - set(roles)
    assert all(GUID.match(guid) for guid in roles.values())
    assert len(set(roles.values())) == len(roles), "two role names share one id"


def test_guids_written_in_the_templates_match_the_role_list():
    roles, named = builtin_roles(), 0
    for path in TEMPLATES:
        text = path.read_text()
        for guid, name in re.findall(r"'([0-9a-f-]{36})'\s*//\s*(.+)", text):
            assert roles.get(name.strip()) == guid, f"{path.name}: {name} is not {guid}"
            named += 1
        literal = set(re.findall(r"'([0-9a-f]{8}-[0-9a-f-]{27})'", text))
        assert literal <= set(roles.values()), f"{path.name}: unknown role ids {literal}"
    assert named >= 3


def test_an_unknown_role_or_a_bad_guid_fails_naming_it(tmp_path):
    rows = Policy.packaged().azure_role_assignments(PERSONA_IDS)
    rows[0] = {**rows[0], "role": "Imaginary Operator"}
    named = r"persona 'data_scientist' \(preprod\): role 'Imaginary Operator' is not in"
    with pytest.raises(IacError, match=named):
        role_assignments(rows, "dev", builtin_roles(), environ={})
    (tmp_path / "roles.yaml").write_text("Reader: acdd72a7\n")
    with pytest.raises(IacError, match="Reader: 'acdd72a7'"):
        builtin_roles(tmp_path / "roles.yaml")


def test_resource_group_grants_match_in_both_environments():
    """Both environments may share one resource group (the platform reads one
    AZURE_RESOURCE_GROUP): that widens nothing while RG-scoped grants are equal."""
    for persona, envs in Policy.packaged().azure_roles.items():
        on_group = {e: {r for r, s in envs.get(e, ()) if "_RG_" in s} for e in ("preprod", "prod")}
        assert on_group["preprod"] <= on_group["prod"], persona


# -- generated roles.bicep parameters ----------------------------------------------------------
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_generated_parameters_fit_roles_bicep(env):
    values = values_of(generated(env, endpoints=["classical-online", "nlp-online"]))
    assert check_values(params(ROLES), values, user_types(ROLES)) == []
    policy_env = {"dev": "preprod", "prod": "prod"}[env]
    rows = [r for r in Policy.packaged().azure_role_assignments() if r["environment"] == policy_env]
    on_endpoint = sum(r["scope"] == "${PROD_ENDPOINT_SCOPE}" for r in rows)
    assert len(values["assignments"]) == len(rows) + on_endpoint  # endpoint rows: one per endpoint
    assert values["workspaceName"] == env_values(env)["workspaceName"]
    assert values["policySha256"] == Policy.packaged().sha256


def test_a_missing_unknown_or_mistyped_param_is_caught():
    values = values_of(generated("dev"))
    declared, types = params(ROLES), user_types(ROLES)
    broken = {k: v for k, v in values.items() if k != "keyVaultName"} | {"vaultName": "kv"}
    assert check_values(declared, broken) == [
        "missing required param 'keyVaultName'",
        "unknown param 'vaultName'",
    ]
    entry = {**values["assignments"][0], "scope": "subscription"}
    assert check_values(declared, values | {"policySha256": 42, "assignments": [entry]}, types) == [
        "policySha256: int where string is declared",
        "assignments: scope='subscription' not in "
        "['workspace', 'lake', 'keyVault', 'resourceGroup', 'endpoint']",
    ]


def test_principal_scope_and_endpoint_problems_are_named():
    policy = Policy.packaged()
    with pytest.raises(IacError, match="set DATA_SCIENTIST_PRINCIPAL_ID, DATA_ANALYST_PRIN"):
        role_assignments(policy.azure_role_assignments(), "dev", builtin_roles(), environ={})
    rows = policy.azure_role_assignments(PERSONA_IDS)
    rows[0] = {**rows[0], "scope": "${PROD_WORKSPACE_SCOPE}"}  # a preprod grant on prod
    with pytest.raises(IacError, match="belongs to prod, not to the preprod grants"):
        role_assignments(rows, "dev", builtin_roles(), environ={})
    with pytest.raises(IacError, match=r"'model_end_user' \(prod\) is granted 'Reader' on an"):
        generated("prod")
    with pytest.raises(IacError, match=r"parameters\.prod\.json is for environment 'prod', not"):
        from_policy(policy, "dev", AZURE / "parameters.prod.json", principal_ids=PERSONA_IDS)
    with pytest.raises(IacError, match=r"not Azure ML online endpoint names .*\['-bad'\]"):
        generated("prod", endpoints=["classical-online", "-bad"])
    with pytest.raises(IacError, match=r"unknown personas \['data_scientst'\]"):
        generated("dev", principal_ids={"data_scientst": PERSONA_IDS["data_scientist"]})


def test_scopes_already_filled_from_the_environment_still_map(monkeypatch):
    scope = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
    monkeypatch.setenv("PREPROD_KEYVAULT_SCOPE", scope)
    rows = Policy.packaged().azure_role_assignments(PERSONA_IDS)
    assert scope in {r["scope"] for r in rows}  # filled in from the environment
    vault = [e for e in role_assignments(rows, "dev", builtin_roles()) if e["scope"] == "keyVault"]
    assert [e["persona"] for e in vault] == ["platform_support"]


def test_one_principal_in_two_personas_is_assigned_once():
    shared = dict(PERSONA_IDS, data_analyst=PERSONA_IDS["business_stakeholder"])
    entries = values_of(generated("dev", principal_ids=shared))["assignments"]
    keys = [(e["scope"], e["principalId"], e["roleDefinitionId"]) for e in entries]
    assert len(keys) == len(set(keys))  # roles.bicep names each guid(scope, principal, role)
    merged = [e["role"] for e in entries if e["persona"] == "data_analyst+business_stakeholder"]
    assert merged == ["Reader"]


def test_cli_writes_the_parameters_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    for var in ["MLOPS_ENV", "MLOPS_RBAC_POLICY", *(f"{p.upper()}_PRINCIPAL_ID" for p in PERSONAS)]:
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "roles.json"
    argv = ["policy", "bicep-params", "--env", "dev", "--out", str(out)]
    argv += ["--parameters", str(AZURE / "parameters.dev.json")]
    assert main(argv) == 1 and not out.exists()
    assert "set DATA_SCIENTIST_PRINCIPAL_ID" in capsys.readouterr().err
    for persona, object_id in PERSONA_IDS.items():
        monkeypatch.setenv(f"{persona.upper()}_PRINCIPAL_ID", object_id)
    assert main([*argv, "--principal", "cicd_process=not-a-guid"]) == 1
    assert "CICD_PROCESS_PRINCIPAL_ID (not a GUID: 'not-a-guid')" in capsys.readouterr().err
    assert main([*argv, "-o", "json"]) == 0
    written = json.loads(out.read_text())
    assert written == generated("dev")  # and the summary printed is what was written
    assert json.loads(capsys.readouterr().out) == values_of(written)["assignments"]


# -- the templates -----------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_environment_parameter_files_fit_main_bicep(env):
    assert check_values(params((AZURE / "main.bicep").read_text()), env_values(env)) == []
    assert env_values(env)["environment"] == env


def test_dev_and_prod_differ_only_where_expected():
    dev, prod = env_values("dev"), env_values("prod")
    assert set(dev) == set(prod)
    sizing = {"environment", "registrySku", "logRetentionDays", "lakeSku"}
    sizing |= {"auditAnchorRetentionDays", "cpuMaxNodes", "gpuMaxNodes"}
    names = {k for k in dev if k.endswith("Name") and not k.endswith("ContainerName")}
    assert {k for k in dev if dev[k] != prod[k]} == sizing | names  # and every resource name
    assert prod["auditAnchorRetentionDays"] > dev["auditAnchorRetentionDays"]
    assert prod["cpuMaxNodes"] >= dev["cpuMaxNodes"] and prod["gpuMaxNodes"] >= dev["gpuMaxNodes"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_resource_names_follow_azure_naming_rules(env):
    values = env_values(env)
    for key in ("workspaceStorageAccountName", "lakeAccountName"):
        assert re.fullmatch(r"[a-z0-9]{3,24}", values[key]), key
    assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", values["keyVaultName"])
    assert re.fullmatch(r"[a-zA-Z0-9]{5,50}", values["registryName"])
    containers = [values[k] for k in values if k.endswith("ContainerName")]
    assert len(containers) == 4
    assert all(re.fullmatch(r"[a-z0-9](-?[a-z0-9]){2,62}", c) for c in containers)


def test_every_resource_uses_a_known_api_version():
    used = set()
    for path in TEMPLATES:
        for kind, version, _ in resources(path.read_text()):
            assert KNOWN_API_VERSIONS.get(kind) == version, f"{path.name}: {kind}@{version}"
            used.add(kind)
    assert used == set(KNOWN_API_VERSIONS)
    for path in TEMPLATES:  # the reader misses no resource statement
        text = path.read_text()
        assert len(re.findall(r"^resource ", code(text), re.M)) == len(resources(text)), path.name


def test_main_modules_exist_and_get_the_params_they_declare():
    text = (AZURE / "main.bicep").read_text()
    found = modules(text)
    expected = {f"modules/{p.name}" for p in TEMPLATES[1:]} - {"modules/roles.bicep"}
    assert {path for path, _ in found.values()} == expected
    for symbol, (relative, keys) in found.items():
        declared = params((AZURE / relative).read_text())
        assert keys <= set(declared), f"{symbol}: undeclared {keys - set(declared)}"
        assert {n for n, p in declared.items() if p["required"]} <= keys, symbol
    typo = modules(text.replace("skuName: lakeSku", "skuNam: lakeSku"))["lake"][1]
    assert "skuNam" in typo and "skuNam" not in params((AZURE / "modules/lake.bicep").read_text())


def test_lake_is_adls_gen2_and_audit_anchors_are_worm():
    lake = (AZURE / "modules" / "lake.bicep").read_text()
    ((_, _, account),) = resources(lake, STORAGE)
    assert re.search(r"isHnsEnabled:\s*true", account) and "allowSharedKeyAccess: false" in account
    ((_, _, worm),) = resources(lake, f"{CONTAINERS}/immutabilityPolicies")
    assert "parent: anchors" in worm and "allowProtectedAppendWrites: false" in worm
    assert "immutabilityPeriodSinceCreationInDays: auditAnchorRetentionDays" in worm
    anchors = [s for _, _, s in resources(lake, CONTAINERS) if s.startswith("resource anchors ")]
    assert len(anchors) == 1 and "name: auditAnchorContainerName" in anchors[0]
    workspace = (AZURE / "modules" / "workspace.bicep").read_text()
    ((_, _, own),) = resources(workspace, STORAGE)
    assert "isHnsEnabled: false" in own  # Azure ML's own store stays plain Blob


def test_compute_clusters_scale_to_zero_and_gpu_is_a_gpu_size():
    clusters = resources((AZURE / "modules" / "compute.bicep").read_text(), f"{AML}/computes")
    assert len(clusters) == 2 and all("minNodeCount: 0" in stmt for _, _, stmt in clusters)
    default = re.search(r"param gpuVmSize string = '([^']+)'", (AZURE / "main.bicep").read_text())
    assert default and re.match(r"Standard_N[CDV]", default[1])


# -- a real compiler and a real subscription, where they exist ---------------------------------
NO_BICEP = "no `bicep` binary on PATH (it ships from GitHub and NuGet only, not reachable here)"


@pytest.mark.skipif(shutil.which("bicep") is None, reason=NO_BICEP)
def test_bicep_build_compiles():
    for path in TEMPLATES:
        done = subprocess.run(["bicep", "build", str(path), "--stdout"], capture_output=True)
        assert done.returncode == 0, f"{path.name}: {done.stderr.decode()}"


@pytest.mark.azure_live
def test_what_if_against_a_subscription(tmp_path):
    if shutil.which("az") is None or not os.environ.get("AZURE_RESOURCE_GROUP"):
        pytest.skip("needs the az CLI, `az login` and AZURE_RESOURCE_GROUP")
    group, env = os.environ["AZURE_RESOURCE_GROUP"], os.environ.get("MLOPS_IAC_ENV", "dev")
    parameters = AZURE / f"parameters.{env}.json"
    roles = tmp_path / "roles.json"
    endpoints = [e for e in os.environ.get("MLOPS_IAC_ENDPOINTS", "").split(",") if e]
    roles.write_text(json.dumps(from_policy(Policy.packaged(), env, parameters, endpoints)))
    what_if = ["az", "deployment", "group", "what-if", "-g", group, "--no-pretty-print"]
    for template, values in (
        (AZURE / "main.bicep", parameters),
        (AZURE / "modules/roles.bicep", roles),
    ):
        command = [*what_if, "-f", str(template), "-p", f"@{values}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
