"""Roles and what each may do. admin > operator > viewer."""

from __future__ import annotations

from typing import Any, Literal

Role = Literal["admin", "operator", "viewer"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}

# The OpenAPI extension key where a route declares the least role that may call it.
ROLE_KEY = "x-required-role"


def allows(role: Role, required: Role) -> bool:
    return _RANK[role] >= _RANK[required]


def required_role(method: str, declared: Role | None) -> Role:
    """A route's declared role, else: reads need a viewer, anything else an admin. The safe
    default means a new write route that forgets to declare its role is admin-only."""
    if declared is not None:
        return declared
    return "viewer" if method in ("GET", "HEAD", "OPTIONS") else "admin"


def role_route(role: Role) -> dict[str, Any]:
    """A route's ``openapi_extra`` declaring its role, shown in the OpenAPI document too:
    ``@router.post(..., openapi_extra=role_route("operator"))``."""
    return {ROLE_KEY: role}
