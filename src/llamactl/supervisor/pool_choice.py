"""Which member of a replica pool serves a request, and which member a pool starts next: pure
functions of the members' states and loads (issue 32), beside capacity.py's eviction, tested
on their own. The pool keeper (pools.py) carries out their answers.

Choosing: among the running members with a free slot, the least loaded relative to its slots
(in flight ÷ slots), ties in turn. A request of a session goes to the member that rendezvous
hashing gives its session among the running members (the prompt cache is per server, so a
conversation that stays skips its prompt), unless that member is saturated and another is not.
Rendezvous (highest random weight) hashing moves only the departing or arriving member's share
of sessions when the members change; a ring would need virtual nodes to do as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

# llama-server's slots when it was given no --parallel of its own (gateway/pool.py caps its
# connections to a backend at the same number).
DEFAULT_SLOTS = 4


@dataclass(frozen=True)
class MemberLoad:
    name: str
    status: str
    inflight: int
    slots: int  # requests it serves at once (its --parallel, else DEFAULT_SLOTS)
    reachable: bool = True  # False: its Ray node is lost, or the request failed on it before

    @property
    def serving(self) -> bool:
        return self.status == "running" and self.reachable

    @property
    def free(self) -> bool:
        return self.serving and self.inflight < self.slots


def session_weight(session: str, member: str) -> int:
    """The member's rendezvous weight for the session: stable across processes and runs."""
    digest = hashlib.blake2b(f"{session}\x00{member}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def session_member(members: Sequence[MemberLoad], session: str) -> MemberLoad | None:
    """The serving member a session belongs to while the serving members stay the same."""
    serving = [m for m in members if m.serving]
    if not serving:
        return None
    return max(serving, key=lambda m: session_weight(session, m.name))


def choose_member(members: Sequence[MemberLoad], session: str | None, turn: int) -> str | None:
    """The member to send a request to now, or None: every serving member is saturated (or
    none serves), and the request waits for a slot."""
    if session is not None:
        home = session_member(members, session)
        if home is not None and home.free:
            return home.name
    free = [m for m in members if m.free]
    if not free:
        return None
    least = min(m.inflight / m.slots for m in free)
    tied = [m for m in free if m.inflight / m.slots == least]
    return tied[turn % len(tied)].name


def member_to_start(members: Sequence[MemberLoad], *, starting: bool) -> str | None:
    """The stopped member a pool starts to grow (stopped before failed, in name order), or
    None: a start is already under way (one at a time per pool), or none is left."""
    if starting or any(m.status in ("starting", "restarting") for m in members):
        return None
    for wanted in ("stopped", "failed"):
        for member in sorted(members, key=lambda m: m.name):
            if member.status == wanted:
                return member.name
    return None


def members_short(members: Sequence[MemberLoad], min_running: int) -> int:
    """How many more members must start for ``min_running`` to hold (those starting count)."""
    alive = sum(1 for m in members if m.status in ("starting", "running", "restarting"))
    return max(min_running - alive, 0)
