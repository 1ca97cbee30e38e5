"""Replica pools' answers (issue 32, ``list_pools``), held as the server documents them
(tests/test_client_types.py), like every model in _models.py."""

from __future__ import annotations

from pydantic import Field

from llamactl.client._models import InstanceStatus, _Model

__all__ = ["Pool", "PoolMember"]


class PoolMember(_Model):
    name: str
    status: InstanceStatus
    node: str | None = Field(description="the Ray node's id it runs on; None when local")
    in_flight: int = Field(description="requests it is answering now")
    slots: int = Field(description="requests it serves at once")
    sleeping: bool = Field(description="asleep: its process runs, its model is unloaded")


class Pool(_Model):
    """A replica pool: instances sharing a ``pool`` that serve its name on /v1."""

    name: str
    min_running: int = Field(description="members kept running")
    waiting: int = Field(description="requests waiting for a member's free slot")
    members: list[PoolMember]
