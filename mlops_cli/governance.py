"""`mlops audit` and `mlops policy show|azure-roles|bicep-params`."""

from __future__ import annotations

import argparse
from typing import Any

from mlops_cli import output as out
from mlops_cli.core import (
    CliError,
    _policy_of,
    _resources,
    arg,
    command,
)


# -- audit / policy -------------------------------------------------------------------------
def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


@command("audit", "the audit trail, newest first, or --verify its hash chain",
         arg("--limit", type=_positive, help="at most N records"),
         arg("--action", help="only this action, e.g. approve, key_rotate, set_traffic"),
         arg("--target", help="only this target, e.g. classical-flight-delay:3 or an endpoint"),
         arg("--verify", action="store_true",
             help="check the hash chain against the anchored heads; exit 1 if broken"),
         )  # fmt: skip
def cmd_audit(args: argparse.Namespace) -> None:
    (governance,) = _resources("governance")
    trail = governance.audit()
    if not args.verify:
        records = trail.read(limit=args.limit, action=args.action, target=args.target)
        out.emit(records, args.output, columns=out.AUDIT_COLUMNS)
        return
    problems = trail.verify()
    out.emit({"path": str(trail.path), "intact": not problems, "head": trail.head(),
              "records": len(trail.read()), "anchors": _anchor_heads(trail),
              "problems": problems}, args.output)  # fmt: skip
    if problems:
        raise CliError(f"the audit trail {trail.path} has {len(problems)} problem(s), listed above")


def _anchor_heads(trail: Any) -> dict[str, Any]:
    """Each anchor's newest (seq, hash); None if empty, the error text if unreadable."""
    heads: dict[str, Any] = {}
    for anchor in trail.anchors:
        try:
            latest = anchor.latest()
        except Exception as err:  # verify() lists it as a problem too
            heads[anchor.name] = f"unreadable: {err}"
            continue
        heads[anchor.name] = {"seq": latest[0], "hash": latest[1]} if latest else None
    return heads


@command("policy show", "the persona x environment x permission matrix, with users")
def cmd_policy_show(args: argparse.Namespace) -> None:
    personas = out.policy_personas(_policy_of(*_resources("governance", stores_needed=False)))
    out.emit(personas if args.output == "json" else out.policy_rows(personas), args.output)


@command("policy azure-roles", "the Azure role assignments the policy implies")
def cmd_policy_azure_roles(args: argparse.Namespace) -> None:
    columns = ("persona", "environment", "role", "scope", "assignee")
    rows = _policy_of(*_resources("governance", stores_needed=False)).azure_role_assignments()
    out.emit(rows, args.output, columns=columns)


def _persona_id(text: str) -> tuple[str, str]:
    persona, sep, object_id = text.partition("=")
    if not sep or not persona or not object_id:
        raise argparse.ArgumentTypeError(f"{text!r} is not PERSONA=OBJECT_ID")
    return persona, object_id


@command("policy bicep-params",
         "the policy's role assignments as parameters of deploy/azure/modules/roles.bicep",
         arg("--env", choices=("dev", "prod"), required=True,
             help="dev (the policy's preprod) or prod"),
         arg("--parameters", metavar="FILE",
             help="main.bicep's parameters, for resource names "
                  "(default: deploy/azure/parameters.<env>.json)"),
         arg("--endpoint", action="append", default=[], metavar="NAME",
             help="an existing online endpoint for endpoint-scoped grants (repeat)"),
         arg("--principal", action="append", default=[], type=_persona_id,
             metavar="PERSONA=OBJECT_ID",
             help="Entra object id of a persona's group or identity; else $<PERSONA>_PRINCIPAL_ID"),
         arg("--out", metavar="FILE", help="write the parameters file here, not to stdout"),
         )  # fmt: skip
def cmd_policy_bicep_params(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    from mlops_core.governance.azure_iac import IacError, from_policy

    policy = _policy_of(*_resources("governance", stores_needed=False))
    source = args.parameters or f"deploy/azure/parameters.{args.env}.json"
    try:
        document = from_policy(policy, args.env, source, args.endpoint, dict(args.principal))
    except IacError as err:
        raise CliError(str(err)) from err
    text = json.dumps(document, indent=2) + "\n"
    if not args.out:
        print(text, end="")
        return
    Path(args.out).write_text(text)
    columns = ("persona", "role", "scope", "endpointName", "principalId")
    out.emit(document["parameters"]["assignments"]["value"], args.output, columns=columns)
