"""The settings of the /v1 gateway's waits and of replica pools (issue 32): split off
settings.py, which holds the rest and re-exports these."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

# An instance's name pattern (instances/models.py, a sibling this layer may not import): a
# pool's name routes /v1 requests as an instance's does.
POOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class Strict(BaseModel):
    """Every settings model: unknown keys refused, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GatewayConfig(Strict):
    """The /v1 gateway: how long a request may wait before it is answered."""

    max_wait: float = Field(default=300.0, gt=0, description=(
        "Seconds a /v1 request may wait (for an on-demand start, for room, for a pool's "
        "free slot) before it gets 503 with error.code timeout."))


class PoolEntry(Strict):
    """One replica pool's settings (issue 32)."""

    min_running: int = Field(default=0, ge=0, le=1000, description=(
        "Members kept running: started when llamactl starts and again after a crash."))


class PoolsConfig(BaseModel):
    """Replica pools (an instance's pool field): when they grow, and, by pool name, each
    pool's settings ({<name>: {min_running: N}})."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    __pydantic_extra__: dict[str, PoolEntry] = Field(init=False)

    scale_up_after: float = Field(default=1.0, gt=0, description=(
        "Seconds a request waits with every running member saturated before the pool starts "
        "one more stopped member (one start at a time per pool, within the limits)."))

    @model_validator(mode="after")
    def _pool_names(self) -> PoolsConfig:
        for name in self.entries:
            if not POOL_NAME.match(name):
                raise ValueError(f"'{name}' is not a valid pool name")
        return self

    @property
    def entries(self) -> dict[str, PoolEntry]:
        """The pools named in the config, by name."""
        return dict(self.__pydantic_extra__ or {})
