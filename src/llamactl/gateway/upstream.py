"""The gateway's one HTTP client to the backends.

aiohttp, not httpx: measured on this kind of machine (DESIGN.md), an httpx pool fell below
200 requests/s at 64 concurrent requests where aiohttp kept ~4,000; GPUStack saw the same (its
PR #2178). No overall connection limit (aiohttp's default of 100 throttled streams past 100,
GPUStack PR #2324), but a small one per backend (below). Bodies are relayed as they come,
not decompressed or re-encoded.
"""

from __future__ import annotations

import aiohttp

CONNECT_TIMEOUT_SECONDS = 5.0
# Connections to one backend at once. llama-server serves HTTP from a small thread pool (8
# threads here) and ties a thread to a keep-alive connection while it lives: a pool as big as
# the client's concurrency took every thread, so /health went unanswered and the liveness
# check killed a healthy, busy server (bench/gateway.py). Its default four slots do the
# work anyway; requests beyond them wait here instead of inside llama-server.
CONNECTIONS_PER_BACKEND = 4


def new_session() -> aiohttp.ClientSession:
    # llama-server (cpp-httplib) closes a keep-alive connection idle for 5 s: let it go first.
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=CONNECTIONS_PER_BACKEND,
                                     keepalive_timeout=4, enable_cleanup_closed=True)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )
