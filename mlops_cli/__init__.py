"""`mlops`: the platform's command line, in the manner of the Azure CLI (`az ml ...`).

`mlops approve|reject`, `mlops model list|show|pending`, `mlops endpoint
list|show|keys|regenerate-key|traffic|serve`, `mlops audit` and `mlops policy
show|azure-roles`; every command takes `-o table|json` and `--help`. Each
command is a function registered with `@command`, next to its arguments.
Constraints:

- Starts fast: only argparse and `cli.output` (stdlib + tabulate) load at
  startup. Resources, MLflow and Dagster are imported inside the command that
  needs them, so `--help` and usage errors never pay for them.
- Never needs the Dagster daemon or instance: commands call the resources
  from `resources_for(current_env())` and the governance code the assets
  use, so a decision taken here equals one taken in the UI. `MLOPS_ENV`
  picks the environment. Local stores are `MLOPS_HOME`, else the nearest
  `.mlops/` in or above the working directory (`mlops_cli.stores`); none found is a
  refusal, and a read never creates a store. `-v` names the stores read.
- Exit codes: 0 success; 1 a refused or failed operation, its message on
  stderr; 2 a usage error (argparse's convention, also for a bad traffic split).
- Changes to production (approve/reject, traffic, key rotation), showing
  endpoint keys and starting/stopping servers act as the caller's identity
  (the OS account, or the Entra ID on Azure) mapped to a policy user by the
  RBAC policy; `--as` may only narrow it to one of that identity's own users.
  They are checked against the policy in `prod` (a `$MLOPS_RBAC_POLICY` swap
  is refused) and audited with the caller and the policy hash, refusals included.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

# Each group registers its commands with @command when imported.
from mlops_cli import endpoints, governance, labeling, models  # noqa: F401
from mlops_cli import output as out
from mlops_cli.core import _COMMANDS, EPILOG, GROUPS, CliError, UsageError
from mlops_cli.stores import VERBOSE


# -- entry point ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output", choices=out.FORMATS, default="table",
                        help="output format (default: table)")  # fmt: skip
    common.add_argument("-v", "--verbose", action="store_true",
                        help="name the stores read and how they were found (stderr)")  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="mlops", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Operate the MLOps platform: models, approvals, endpoints, audit, policy.",
    )  # fmt: skip
    top = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    groups: dict[str, Any] = {}
    for path, handler, help_text, arguments, defaults in _COMMANDS:
        *group, name = path.split()
        subs = top
        if group:
            if group[0] not in groups:
                about = GROUPS[group[0]]
                holder = top.add_parser(group[0], help=about, description=about)
                groups[group[0]] = holder.add_subparsers(
                    dest="command", metavar="COMMAND", required=True
                )
            subs = groups[group[0]]
        sub = subs.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(handler=handler, command_parser=sub, **defaults)
        for flags, kwargs in arguments:
            sub.add_argument(*flags, **kwargs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (the `mlops` script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else 2
    verbose = VERBOSE.set(args.verbose)
    try:
        args.handler(args)
    except UsageError as err:
        args.command_parser.print_usage(sys.stderr)
        print(f"{args.command_parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except CliError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `mlops ... | head`: the reader left; say nothing more
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - interpreter shutdown closes it
        return 0
    finally:
        VERBOSE.reset(verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
