"""The ledger of requests (issue 30): one record per ``/v1`` and proxy request, what the
answer said of its tokens and speed (meter.py), kept in SQLite off the event loop (ledger.py),
and read back with filters, summaries and exports (queries.py)."""
