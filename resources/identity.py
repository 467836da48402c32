"""Who is calling, from the environment: the OS account locally, the Entra ID principal on Azure.

Never from a flag, a launch config or an environment variable a caller can set:
`LocalIdentity` reads the password database entry of the process's effective
uid (`pwd`), not `getpass.getuser()`, which trusts `$LOGNAME`/`$USER` first;
`EntraIdentity` asks `DefaultAzureCredential` for a token and reads its `oid`
(and `upn`) claims (`mlops_core.governance.identity.Caller.from_token`). The
policy maps either to policy users (`os_users`, `entra_ids`).
"""

from __future__ import annotations

import os
import pwd
from abc import ABC, abstractmethod

import dagster as dg
from pydantic import Field

from mlops_core.governance.identity import Caller

ARM_SCOPE = "https://management.azure.com/.default"


def os_account() -> str:
    """The account name of this process's effective uid (the identity source tests replace)."""
    return pwd.getpwuid(os.geteuid()).pw_name


class Identity(dg.ConfigurableResource, ABC):
    """The authenticated identity of this process."""

    @abstractmethod
    def caller(self) -> Caller: ...


class LocalIdentity(Identity):
    """The OS account running this process."""

    def caller(self) -> Caller:
        return Caller.os_account(os_account())


class EntraIdentity(Identity):
    """The Entra ID principal `DefaultAzureCredential` authenticates as (user, managed identity
    or service principal); the token is requested for `scope` and only its claims are read."""

    scope: str = Field(default=ARM_SCOPE, description="Scope the identity token is requested for.")

    def caller(self) -> Caller:
        from azure.identity import DefaultAzureCredential

        token = DefaultAzureCredential().get_token(self.scope).token
        return Caller.from_token(token)


def identity_for(env: str) -> Identity:
    return EntraIdentity() if env == "azure" else LocalIdentity()


def current_caller() -> Caller:
    """This process's caller in the current environment (`MLOPS_ENV`), for code without
    resources at hand (training lineage tags)."""
    from resources.env import current_env

    return identity_for(current_env()).caller()
