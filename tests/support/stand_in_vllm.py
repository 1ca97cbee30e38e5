"""A stand-in for ``vllm serve`` (vLLM does not run here): its command line, its log format,
VLLM_API_KEY on /v1, /health only once listening. See stand_in_http.py."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stand_in_http import serve


def log(level: str, message: str) -> None:
    stamp = time.strftime("%m-%d %H:%M:%S")
    print(f"(APIServer pid={os.getpid()}) {level} {stamp} [api_server.py:1] {message}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="vllm")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("model")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name")
    for flag in ("--tensor-parallel-size", "--pipeline-parallel-size", "--max-model-len",
                 "--max-num-seqs", "--seed"):
        parser.add_argument(flag, type=int)
    parser.add_argument("--gpu-memory-utilization", type=float)
    parser.add_argument("--dtype", choices=["auto", "half", "float16", "bfloat16", "float",
                                            "float32"])
    parser.add_argument("--kv-cache-dtype", choices=["auto", "fp8", "fp8_e5m2", "fp8_e4m3"])
    for flag in ("--quantization", "--download-dir", "--chat-template"):
        parser.add_argument(flag)
    for flag in ("--enforce-eager", "--trust-remote-code", "--enable-prefix-caching",
                 "--no-enable-prefix-caching", "--enable-sleep-mode"):
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args()
    log("INFO", f"vLLM API server version 0.0.0-stand-in; model {args.model}")
    log("WARNING", "stand-in: no GPU, no weights, canned answers")
    # As vLLM: the sleep routes need both the flag and the server's dev mode
    sleep_routes = args.enable_sleep_mode and os.environ.get("VLLM_SERVER_DEV_MODE") == "1"
    serve(args.host, args.port, args.served_model_name or args.model,
          key=os.environ.get("VLLM_API_KEY"), health=True, log=log, sleep_routes=sleep_routes)


if __name__ == "__main__":
    main()
