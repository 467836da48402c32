"""Who is calling: an identity from the environment, mapped to policy users by the policy.

The caller is never taken from a flag or a launch config. Locally it is the OS
account of the process's effective uid; on Azure the Entra ID principal of the
credential's token (`resources/identity.py` obtains both). The policy maps an
identity to the policy user(s) it may act as (`os_users`, `entra_ids`); `--as`
may only narrow that set to one user, never name anyone else.

Pure Python: the token is decoded here without verifying its signature, which
is sound only because it came straight from the credential in this process,
never from a caller.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from mlops_core.governance.policy import Decision, PermissionDenied, Policy


@dataclass(frozen=True)
class Caller:
    """An authenticated identity: `principal` is what the audit trail records as `caller`."""

    kind: str  # "os" or "entra"
    name: str  # the OS account, or the Entra object id
    upn: str = ""  # Entra: the user principal name (or app id), when the token has one

    @property
    def principal(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def os_account(cls, name: str) -> Caller:
        if not name:
            raise ValueError("an OS account name is required")
        return cls("os", name)

    @classmethod
    def from_token(cls, token: str) -> Caller:
        """The Entra principal of an access token the caller's own credential just issued."""
        claims = jwt_claims(token)
        oid = str(claims.get("oid") or "")
        if not oid:
            raise ValueError("the access token has no 'oid' claim: not an Entra ID principal")
        upn = claims.get("upn") or claims.get("preferred_username") or claims.get("appid") or ""
        return cls("entra", oid, str(upn))


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, decoded without verification (see the module docstring)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT: expected three dot-separated parts")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"not a JWT: the payload does not decode: {err}") from None
    if not isinstance(claims, dict):
        raise ValueError("not a JWT: the payload is not a JSON object")
    return claims


class IdentityRefused(PermissionDenied):
    """The caller may not act as the requested user (or as anyone); the message says why."""


def users_for(policy: Policy, caller: Caller) -> tuple[str, ...]:
    """The policy users `caller` may act as, in policy order; () when unmapped."""
    if caller.kind == "os":
        return tuple(policy.os_users.get(caller.name, ()))
    if caller.kind == "entra":
        by_oid = tuple(policy.entra_ids.get(caller.name, ()))
        by_upn = tuple(policy.entra_ids.get(caller.upn, ())) if caller.upn else ()
        return by_oid + tuple(u for u in by_upn if u not in by_oid)
    return ()


def _refuse(caller: Caller, requested: str | None, why: str, permission: str) -> IdentityRefused:
    shown = requested if requested else caller.principal
    return IdentityRefused(Decision(False, shown, "", permission, "prod", why))


def act_as(
    policy: Policy, caller: Caller, requested: str | None = None, permission: str = ""
) -> str:
    """The policy user `caller` acts as; `requested` (`--as`) may only pick one of its own.

    Raises `IdentityRefused` for an unmapped caller, an empty or foreign `requested`
    user, or a caller mapped to several users without a choice.
    """
    mine = users_for(policy, caller)
    section = "os_users" if caller.kind == "os" else "entra_ids"
    if requested is not None and not requested.strip():
        why = f"{caller.principal}: an empty --as names nobody; omit it or name one of your users"
        raise _refuse(caller, requested, why, permission)
    if not mine:
        why = (
            f"{caller.principal} is not mapped to any user of the RBAC policy ({policy.source}); "
            f"a policy maintainer adds it under `{section}:`"
        )
        raise _refuse(caller, requested, why, permission)
    if requested is not None:
        if requested not in mine:
            why = (
                f"{caller.principal} may act only as {', '.join(mine)}, not as {requested!r}: "
                "--as can narrow your own identity, never name someone else"
            )
            raise _refuse(caller, requested, why, permission)
        return requested
    if len(mine) > 1:
        why = f"{caller.principal} may act as {', '.join(mine)}: choose one with --as"
        raise _refuse(caller, requested, why, permission)
    return mine[0]
