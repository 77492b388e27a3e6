"""Roles: what an account may do in the operator console. Every account is a `user`; `support`
reads everything, makes small credit adjustments and cancels tasks; `admin` does everything."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["user", "support", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}


def at_least(role: str, needed: Role) -> bool:
    """Whether `role` may do what `needed` may (an unknown role may do nothing)."""
    return _RANK.get(role, -1) >= _RANK[needed]
