"""What the stand-in vLLM and mlx_lm servers share: an OpenAI-shaped HTTP server.

Stand-ins, not the real servers (neither runs here: no GPU, no macOS). Each entry script
(stand_in_vllm.py, stand_in_mlx_lm.py) parses exactly its server's command line, so a flag the
real one lacks fails the launch as it would, prints log lines in its server's format, and
serves /v1/models and /v1/completions under the served name.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import sys
import time
from collections.abc import Callable


def serve(host: str, port: int, model: str, *, key: str | None, health: bool,
          log: Callable[[str, str], None], sleep_routes: bool = False) -> None:
    """Listen once the simulated load is over (STAND_IN_LOAD_SECONDS), until SIGTERM.
    ``sleep_routes``: vLLM's sleep mode (POST /sleep, POST /wake_up, GET /is_sleeping);
    asleep, a completion is refused with 503, as a request llamactl should have woken it for."""
    signal.signal(signal.SIGTERM, lambda *_: (log("INFO", "Shutting down"), os._exit(0)))
    time.sleep(float(os.environ.get("STAND_IN_LOAD_SECONDS", "0.2")))

    asleep = [False]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/is_sleeping" and sleep_routes:
                self._answer(200, {"is_sleeping": asleep[0]})
            elif self.path == "/health" and health:
                self._answer(200, {})
            elif self.path == "/v1/models" and self._authorized():
                self._answer(200, {"object": "list", "data": [
                    {"id": model, "object": "model", "owned_by": "stand-in"}]})
            elif self.path.startswith("/v1/"):
                self._answer(401, {"error": "unauthorized"})
            else:
                self._answer(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if sleep_routes and self.path.split("?")[0] in ("/sleep", "/wake_up"):
                asleep[0] = self.path.startswith("/sleep")
                log("INFO", "sleeping: weights offloaded" if asleep[0] else "woken up")
                self._answer(200, {})
                return
            body = json.loads(raw or b"{}")
            if asleep[0]:
                self._answer(503, {"error": "the engine is sleeping"})
            elif not self._authorized():
                self._answer(401, {"error": "unauthorized"})
            elif self.path != "/v1/completions" or body.get("model") != model:
                self._answer(404, {"error": f"no model {body.get('model')!r} at {self.path}"})
            else:
                log("INFO", f"completion for {len(body.get('prompt', ''))} prompt characters")
                self._answer(200, {"object": "text_completion", "model": model, "choices": [
                    {"index": 0, "text": " from the stand-in", "finish_reason": "length"}]})

        def _authorized(self) -> bool:
            return key is None or self.headers.get("Authorization") == f"Bearer {key}"

        def _answer(self, status: int, document: object) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    log("INFO", f"Uvicorn running on http://{host}:{port}")
    sys.stdout.flush()
    server.serve_forever()
