"""A stand-in for ``mlx_lm.server`` (MLX runs on Apple silicon only): its command line, its
log format, no key, and no /health (as older versions), so readiness comes from /v1/models.
See stand_in_http.py."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stand_in_http import serve


def log(level: str, message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')},000 - {level} - {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="mlx_lm.server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--num-draft-tokens", type=int)
    parser.add_argument("--temp", type=float)
    parser.add_argument("--top-p", type=float)
    for flag in ("--chat-template", "--adapter-path", "--draft-model"):
        parser.add_argument(flag)
    for flag in ("--trust-remote-code", "--use-default-chat-template"):
        parser.add_argument(flag, action="store_true")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR",
                                                "CRITICAL"])
    args = parser.parse_args()
    log("INFO", f"loading {args.model}")
    log("WARNING", "stand-in: no Metal, no weights, canned answers")
    serve(args.host, args.port, args.model, key=None, health=False, log=log)


if __name__ == "__main__":
    main()
