"""Who may use the console: a user signed in with a Bearer token (an API key never opens it)
whose role is at least the one a route needs, and, where this server asks for it, whose session
has passed the TOTP second factor.

Routes take `Support` or `Admin` (the operator's `Principal`); the second-factor routes take
`OperatorSigningIn`, which checks the role but not the factor, so a new operator can enrol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from sqlalchemy import select

from vidgate.admin.errors import AdminsOnly, OperatorsOnly, SecondFactorRequired
from vidgate.auth.dependencies import CurrentUser
from vidgate.auth.models import AuthSession
from vidgate.auth.principal import Principal
from vidgate.deps import RuntimeDep
from vidgate.users.roles import Role, at_least


def _check_role(user: Principal, needed: Role) -> None:
    if not at_least(user.role, "support"):
        raise OperatorsOnly()
    if not at_least(user.role, needed):
        raise AdminsOnly()


async def passed_second_factor(runtime: RuntimeDep, user: Principal) -> bool:
    """Whether the caller's session has passed TOTP (always true where it is not asked for)."""
    if not runtime.settings.console_needs_second_factor:
        return True
    if user.session_id is None:
        return False
    async with runtime.db.session() as session:
        at = await session.scalar(
            select(AuthSession.second_factor_at).where(AuthSession.id == user.session_id)
        )
    return at is not None


def require(needed: Role) -> Callable[[Principal, RuntimeDep], Awaitable[Principal]]:
    async def operator(user: CurrentUser, runtime: RuntimeDep) -> Principal:
        _check_role(user, needed)
        if not await passed_second_factor(runtime, user):
            raise SecondFactorRequired()
        return user

    return operator


async def operator_signing_in(user: CurrentUser) -> Principal:
    _check_role(user, "support")
    return user


Support = Annotated[Principal, Depends(require("support"))]
Admin = Annotated[Principal, Depends(require("admin"))]
OperatorSigningIn = Annotated[Principal, Depends(operator_signing_in)]
# What every console route may answer besides its own errors (for `documented(...)`).
GUARD_ERRORS = (OperatorsOnly, AdminsOnly, SecondFactorRequired)
