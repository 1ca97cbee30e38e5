"""Leases: the requests in flight on an instance.

While a lease is out, the instance is neither stopped for idleness nor evicted to make room.
Taking and releasing a lease are plain synchronous calls on the event loop's thread: no await
separates the owner's check of the status from the count's change, so they are as atomic as a
message handled by the owner task, and cost nothing on the gateway's hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Lease:
    def __init__(self, book: LeaseBook, port: int, api_key: str, slots: int | None = None,
                 host: str = "127.0.0.1"):
        self.port = port
        self.host = host  # where the backend listens: its Ray node's address (issue 18)
        self.api_key = api_key
        self.slots = slots  # the backend's --parallel, when it was given one
        self.instance = book.name  # whose lease: a pool's request learns its member here
        self._book = book
        self._released = False

    def release(self) -> None:
        """Give the lease back; safe to call more than once."""
        if not self._released:
            self._released = True
            self._book.release()


class LeaseBook:
    def __init__(self, on_idle: Callable[[], None], name: str = ""):
        self.name = name
        self.inflight = 0
        self.last_used = time.monotonic()  # end of the last request, or its start if running
        self._on_idle = on_idle
        # Set while the instance is a pool's member (issue 32): a slot freed for its waiters.
        self.on_release: Callable[[], None] | None = None

    def take(self, port: int, api_key: str, slots: int | None = None,
             host: str = "127.0.0.1") -> Lease:
        self.inflight += 1
        self.last_used = time.monotonic()
        return Lease(self, port, api_key, slots, host)

    def release(self) -> None:
        self.inflight -= 1
        self.last_used = time.monotonic()
        if self.inflight == 0:
            self._on_idle()
        if self.on_release is not None:
            self.on_release()

    def idle_for(self) -> float:
        return 0.0 if self.inflight else time.monotonic() - self.last_used
