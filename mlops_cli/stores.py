"""Where the `mlops` CLI finds the stores, and reading them without creating them.

Locally the stores are one folder (`.mlops/`, see `resources.env`): `MLOPS_HOME`
when set, else the nearest `.mlops/` in or above the working directory, the way
git finds `.git` (`MLOPS_CEILING_DIRECTORIES`, like git's `GIT_CEILING_DIRECTORIES`,
stops the walk). Finding none is a refusal that names what was looked for and how
to set `MLOPS_HOME`; commands that read no store (`policy ...`) go on without.
On `MLOPS_ENV=azure` the registries, lake and approvals are remote and nothing is
discovered. Constraints:

- Cheap to import (stdlib only): resources are imported inside the functions.
- A read never creates a store. MLflow's SQLite store and the approvals store
  create their database when opened, so a read checks that a local database
  exists before anything opens it; a missing one is "does not exist yet", an
  error or an empty result that says so, and stays missing.
- `-v` says on stderr which stores a command reads (`note`).
"""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_cli.core import CliError

VERBOSE: ContextVar[bool] = ContextVar("mlops_verbose", default=False)
CEILINGS_VAR = "MLOPS_CEILING_DIRECTORIES"
_CREATED_BY = {"dev": "nothing has been registered yet", "prod": "no model has been promoted yet"}


class MissingStore(CliError):
    """A store the command reads does not exist yet; the read did not create it."""


def note(text: str) -> None:
    """With `-v`, say `text` on stderr (which store is read, and how it was found)."""
    if VERBOSE.get():
        print(text, file=sys.stderr)


@dataclass(frozen=True)
class Stores:
    env: str
    home: Path  # root of the local stores (on azure, of the local audit trail and endpoints)
    how: str  # how `home` was chosen, for `-v`

    def describe(self) -> str:
        return f"stores: {self.home} ({self.how})"


def locate(env: str, required: bool = True) -> Stores:
    """The stores this invocation reads; `CliError` when none are found and `required`."""
    from resources.env import MLOPS_DIR, find_mlops_home, mlops_home

    if env != "local":
        return Stores(env, mlops_home(), f"MLOPS_ENV={env}: registries, lake and approvals "
                      "are remote; local audit trail and endpoints here")  # fmt: skip
    if os.environ.get("MLOPS_HOME"):
        return Stores(env, mlops_home(), "MLOPS_HOME set")
    cwd = Path.cwd()
    ceilings = [Path(p) for p in os.environ.get(CEILINGS_VAR, "").split(os.pathsep) if p]
    found = find_mlops_home(cwd, ceilings)
    if found is not None:
        owner = found.stat().st_uid
        if owner != os.getuid():  # git's "dubious ownership": a shared /tmp/.mlops is not ours
            raise CliError(
                f"{found} was found by walking up from {cwd} but belongs to uid {owner}, not "
                f"you (uid {os.getuid()}); its stores could say anything. Set MLOPS_HOME to "
                "use it anyway, or MLOPS_CEILING_DIRECTORIES to stop the search above your project"
            )
        return Stores(env, found, f"MLOPS_HOME unset; found by walking up from {cwd}")
    if not required:
        return Stores(env, mlops_home(), f"MLOPS_HOME unset, no {MLOPS_DIR}/ found; not needed")
    raise CliError(
        f"no MLOps stores found: MLOPS_HOME is unset and there is no {MLOPS_DIR}/ folder in "
        f"{cwd} or any folder above it. Run mlops inside the project (the folder where "
        f"`make demo` created {MLOPS_DIR}/), or set MLOPS_HOME to the stores folder, e.g. "
        f"`export MLOPS_HOME=/path/to/project/{MLOPS_DIR}`"
    )


def resources_of(where: Stores) -> dict[str, Any]:
    """The environment's resources, rooted at the located stores when local."""
    from resources import env as env_module  # the module, so tests can rebind local_resources

    if where.env == "local":
        return env_module.local_resources(where.home)
    return env_module.resources_for(where.env)  # type: ignore[arg-type]


# -- registries -----------------------------------------------------------------------------
def registry_db(registry: Any, stage: str) -> Path | None:
    """A local registry's SQLite file (None for a remote one, or one whose store is a
    database server). Named here, not asked for: `LocalMlflowRegistry.tracking_uri`
    creates the registry's folder."""
    from resources.registry import LocalMlflowRegistry

    if not isinstance(registry, LocalMlflowRegistry) or registry.store_url:
        return None
    return Path(registry.root).resolve() / f"mlflow-{stage}.db"


def has_registry(registry: Any, stage: str) -> bool:
    db = registry_db(registry, stage)
    return db is None or db.is_file()


def require_registry(registry: Any, stage: str) -> None:
    """Check the `stage` registry exists before anything opens it; `MissingStore` if not."""
    db = registry_db(registry, stage)
    if db is not None and not db.is_file():
        raise MissingStore(f"the {stage} registry does not exist yet: there is no {db} "
                           f"({_CREATED_BY.get(stage, 'nothing has been stored')})")  # fmt: skip
    note(f"{stage} registry: {db or type(registry).__name__}")


# -- approvals ------------------------------------------------------------------------------
class NoApprovals:
    """The records of an approvals store that does not exist yet: none."""

    def decisions(self, model_name: str) -> list[dict[str, Any]]:
        return []

    def decision(self, model_name: str, dev_version: str, environment: str = "prod") -> None:
        return None

    def staging_results(self, model_name: str, version: str) -> list[dict[str, Any]]:
        return []


def readable_approvals(approvals: Any) -> Any:
    """`approvals` for reading: an absent local store reads as empty instead of being created."""
    from resources.approvals_store import LocalApprovalStore

    if isinstance(approvals, LocalApprovalStore) and not Path(approvals.path).is_file():
        note(f"approvals store: {approvals.path} does not exist yet (no records)")
        return NoApprovals()
    note(f"approvals store: {getattr(approvals, 'path', type(approvals).__name__)}")
    return approvals
