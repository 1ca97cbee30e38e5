"""The names a ``/v1`` request's ``model`` may carry: instances' names, their aliases and
replica pools' names (issue 32). Each routes to one place, so a name may be only one of them:
a clash is 409 NAME_CONFLICT, whichever came first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llamactl.errors import Conflict, ValidationFailed
from llamactl.supervisor.owner import InstanceOwner


class NameBook:
    def __init__(self, owners: Mapping[str, InstanceOwner], configured_pools: Iterable[str]):
        self._owners = owners
        self._configured_pools = set(configured_pools)

    def check_names(self, names: list[str], *, exclude: str | None) -> None:
        """Names and aliases route /v1 requests, so each may belong to one instance only,
        and never name a pool."""
        if len(set(names)) != len(names):
            raise ValidationFailed("aliases repeat a name", "aliases: each name only once")
        pools = self._pools_besides(exclude) & set(names)
        if pools:
            raise Conflict(f"'{sorted(pools)[0]}' already names a pool", code="NAME_CONFLICT")
        for other, owner in self._owners.items():
            if other == exclude:
                continue
            taken = {other, *owner.record.spec.aliases} & set(names)
            if taken:
                raise Conflict(f"'{sorted(taken)[0]}' already names instance '{other}'",
                               code="NAME_CONFLICT")

    def check_pool(self, pool: str | None, own: list[str], *, exclude: str | None) -> None:
        """A pool's name routes /v1 requests too: never an instance's name or alias (this
        instance's own included)."""
        if pool is None:
            return
        if pool in own:
            raise Conflict(f"'{pool}' names this instance; a pool needs a name of its own",
                           code="NAME_CONFLICT")
        for other, owner in self._owners.items():
            if other != exclude and pool in (other, *owner.record.spec.aliases):
                raise Conflict(f"'{pool}' already names instance '{other}'",
                               code="NAME_CONFLICT")

    def _pools_besides(self, exclude: str | None) -> set[str]:
        """The pools that exist without the instance ``exclude``: the config's, and those
        of the other instances."""
        return self._configured_pools | {
            o.record.spec.pool for name, o in self._owners.items()
            if name != exclude and o.record.spec.pool is not None}
