"""schemathesis hooks for tests/test_openapi_contract.py, loaded by ``st run`` through
SCHEMATHESIS_HOOKS (a file, run in schemathesis's process, not imported by the tests).

- A followed log (``follow=true``) is an endless event stream: its cases ask for the plain
  JSON answer instead (the stream has its own tests in test_logs.py).
- A new instance's ``model_path`` is the tiny test model (FUZZ_MODEL_PATH), so that creates
  succeed and the stateful phase reaches the operations on a real instance (start, stop,
  health, logs, update, delete) instead of meeting 400 MODEL_NOT_FOUND every time; its
  backend is llama.cpp, the one installed.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

_TRUE = {"true", "1", "yes", "on", "t", "y"}


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    path, method = case.operation.path, case.method.upper()
    query = case.query
    if (path.endswith("/logs") and isinstance(query, dict)
            and str(query.get("follow", "")).lower() in _TRUE):
        query["follow"] = "false"
    model = os.environ.get("FUZZ_MODEL_PATH")
    body = case.body
    if (model and method in ("POST", "PUT") and path in ("/api/instances",
                                                           "/api/instances/{name}")
            and isinstance(body, dict) and isinstance(body.get("model_path"), str)
            and body["model_path"]):
        body["model_path"] = model
        # Only llama-server is installed here: starting another backend's instance is a 502
        # START_FAILED by design, which the run would count as a server error.
        body.pop("backend", None)
