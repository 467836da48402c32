"""`mlops endpoint list|show|keys|regenerate-key|traffic|serve`.

Showing or rotating keys needs `manage_endpoint_keys` in prod, shifting traffic and
starting or stopping servers `deploy_endpoint`, for the caller's own identity; each
attempt is audited (key values never are).

Tables show what each endpoint is now: `running` (a worker answers), `state` (running,
stopped on purpose, or down: crashed or hung) and each deployment's model with the registry
its version belongs to (`blue: flights prod v2 (from dev v3)`); JSON has the same fields."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from mlops_cli import output as out
from mlops_cli.core import (
    NAME,
    REASON,
    CliError,
    UsageError,
    _audited,
    _endpoint_errors,
    _resources,
    arg,
    as_user,
    command,
)

COLUMNS = ("name", "running", "state", "workers", "scoring_uri", "traffic", "deployments")


def _version(deployment: dict[str, Any]) -> str:
    return deployment.get("version_label") or f"v{deployment.get('model_version')}"


def table_row(info: Any) -> dict[str, Any]:
    """`output.endpoint_row` with the state and registry-qualified versions."""
    row = out.endpoint_row(out.endpoint_view(info))
    row["state"] = info.extra.get("state")
    row["deployments"] = [
        f"{slot}: {d.get('model_name')} {_version(d)}" for slot, d in info.deployments.items()
    ]
    return row


def emit_endpoints(infos: Iterable[Any], output: str) -> None:
    if output == "json":
        out.emit_endpoints(infos, output)
    else:
        out.emit([table_row(info) for info in infos], output, COLUMNS)


def emit_endpoint(info: Any, output: str) -> None:
    if output == "json":
        out.emit_endpoint(info, output)
    else:
        out.emit(table_row(info), output)


# -- endpoint -------------------------------------------------------------------------------
@command("endpoint list", "endpoints: running, scoring URI, traffic, deployed versions")
def cmd_endpoint_list(args: argparse.Namespace) -> None:
    (endpoints,) = _resources("endpoints")
    with _endpoint_errors():
        emit_endpoints(endpoints.list(), args.output)


@command("endpoint show", "one endpoint: deployments, traffic, server", NAME)
def cmd_endpoint_show(args: argparse.Namespace) -> None:
    (endpoints,) = _resources("endpoints")
    with _endpoint_errors():
        emit_endpoint(endpoints.get(args.name), args.output)


@command("endpoint keys", "the endpoint's primary and secondary keys (audited)", NAME,
         as_user("reads them (needs manage_endpoint_keys in prod)"))  # fmt: skip
def cmd_endpoint_keys(args: argparse.Namespace) -> None:
    endpoints, governance, identity = _resources("endpoints", "governance", "identity")
    details = {"endpoint": args.name}
    with _audited(governance, identity, "key_show", args.user, args.name,
                  "manage_endpoint_keys", "endpoint keys shown", details):  # fmt: skip
        keys = endpoints.get_keys(args.name)
    out.emit(keys, args.output)


@command("endpoint regenerate-key", "replace one key of an endpoint (audited)", NAME,
         arg("--key-type", required=True, choices=("primary", "secondary")),
         as_user("rotates it (needs manage_endpoint_keys in prod)"), REASON)  # fmt: skip
def cmd_endpoint_regenerate_key(args: argparse.Namespace) -> None:
    endpoints, governance, identity = _resources("endpoints", "governance", "identity")
    reason = args.reason or f"{args.key_type} key regenerated"
    details = {"endpoint": args.name, "slot": args.key_type}
    with _audited(governance, identity, "key_rotate", args.user, args.name,
                  "manage_endpoint_keys", reason, details) as user:  # fmt: skip
        endpoints.regenerate_key(args.name, args.key_type)
    out.emit({"endpoint": args.name, "regenerated": args.key_type, "by": user}, args.output)


def traffic_item(text: str) -> tuple[str, int]:
    """One `DEPLOYMENT=PERCENT` argument; argparse turns the error into exit code 2."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write DEPLOYMENT=PERCENT, e.g. blue=90")
    try:
        percent = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the percentage must be an integer") from None
    if not 0 <= percent <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: the percentage must be from 0 to 100")
    return name.strip(), percent


def traffic_split(items: Sequence[tuple[str, int]]) -> dict[str, int]:
    """The whole split; a repeated deployment or a sum other than 100 is a usage error."""
    split: dict[str, int] = {}
    for name, percent in items:
        if name in split:
            raise UsageError(f"deployment {name!r} appears twice in the traffic split")
        split[name] = percent
    if sum(split.values()) != 100:
        raise UsageError(f"traffic percentages must sum to 100, not {sum(split.values())}")
    return split


@command("endpoint traffic", "set the traffic split across deployments (audited)", NAME,
         arg("traffic", nargs="+", type=traffic_item, metavar="DEPLOYMENT=PERCENT",
             help="e.g. blue=90 green=10: integers summing to 100"),
         as_user("shifts traffic (needs deploy_endpoint in prod)"), REASON)  # fmt: skip
def cmd_endpoint_traffic(args: argparse.Namespace) -> None:
    split = traffic_split(args.traffic)
    endpoints, governance, identity = _resources("endpoints", "governance", "identity")
    reason = args.reason or "traffic " + ", ".join(f"{k}={v}" for k, v in split.items())
    details = {"endpoint": args.name, "traffic": split}
    with _audited(governance, identity, "set_traffic", args.user, args.name, "deploy_endpoint",
                  reason, details):  # fmt: skip
        info = endpoints.set_traffic(args.name, split)
    emit_endpoint(info, args.output)


@command("endpoint serve", "start local scoring servers on 127.0.0.1, or --stop them (audited)",
         arg("name", nargs="?", help="one endpoint (default: all)"),
         arg("--stop", action="store_true", help="stop the servers instead"),
         as_user("starts or stops them (needs deploy_endpoint in prod)"))  # fmt: skip
def cmd_endpoint_serve(args: argparse.Namespace) -> None:
    endpoints, governance, identity = _resources("endpoints", "governance", "identity")
    if not args.stop and not hasattr(endpoints, "start"):
        raise CliError("these endpoints are managed by Azure ML: there is no local server")
    with _endpoint_errors():
        names = [args.name] if args.name else [info.name for info in endpoints.list()]
    if not names and not args.stop:
        raise CliError(f"no endpoints under {getattr(endpoints, 'root', '?')}; deploy a model "
                       "first (`make demo`, or a scenario's deployment assets)")  # fmt: skip
    action = "serve_stop" if args.stop else "serve_start"
    for name in names:
        with _audited(governance, identity, action, args.user, name, "deploy_endpoint",
                      f"local server {'stopped' if args.stop else 'started'}",
                      {"endpoint": name}):  # fmt: skip
            endpoints.stop(name) if args.stop else endpoints.start(name)
    with _endpoint_errors():
        emit_endpoints([endpoints.get(name) for name in names], args.output)
