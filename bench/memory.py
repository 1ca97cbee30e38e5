"""Accuracy of llamactl's memory estimate (issue 20) against llama-server's measured RSS.

Starts the packaged llama-server directly (no llamactl in between) on a bigger tiny model
(12 layers, 256 wide, written on the fly) at three context sizes and two KV cache types, and
on the quick-start Gemma 3 270M if ``--gemma PATH`` is given (scripts/quickstart writes it to
models/gemma-3-270m-q4_k_m.gguf). For each case: the estimate (backends/llama_cpp/memory.py),
the RSS after load (/health answers 200) and after one chat request, and the error of the
estimate against the larger RSS. Goal: within 15 % on every case. No GPU is used (VRAM is not
measured here).

    .venv/bin/python bench/memory.py [--gemma models/gemma-3-270m-q4_k_m.gguf]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import httpx
import psutil
from _common import (
    BenchError,
    answers_200,
    default_llama_server,
    pick_port,
    run_in_workdir,
    spawn,
    stop_group,
    verdict,
    wait_for,
)

from llamactl.backends.llama_cpp.memory import MIB, estimate_llama_cpp, read_model_facts
from llamactl.devtools.tiny_model import Shape, write_tiny_model

GOAL = 0.15
CONTEXTS = (1024, 4096, 16384)
KV_TYPES = ("f16", "q8_0")
PORTS = (18800, 18899)


def measure(binary: str, model: Path, options: dict[str, Any], work: Path) -> dict[str, Any]:
    port = pick_port(*PORTS, set())
    argv = [binary, "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
            "-c", str(options["context_size"]), "-ctk", options["cache_type_k"],
            "-ctv", options["cache_type_v"], "-t", "2"]
    log = work / f"{model.stem}-{port}.log"
    process = spawn(argv, log)
    try:
        wait_for(answers_200(f"http://127.0.0.1:{port}/health", process, log), 120, "load")
        loaded = psutil.Process(process.pid).memory_info().rss
        httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16})
        after = psutil.Process(process.pid).memory_info().rss
    finally:
        stop_group(process)
    estimate = estimate_llama_cpp(read_model_facts(model), options, has_gpu=False).ram
    measured = max(loaded, after)
    return {"model": model.stem, **options, "estimate": estimate, "rss_loaded": loaded,
            "rss_after_request": after, "error": (estimate - measured) / measured}


def run(work: Path, gemma: Path | None) -> dict[str, Any]:
    binary = default_llama_server()
    if not binary:
        raise BenchError("no llama-server: run scripts/install-llama-server")
    big = write_tiny_model(work / "tiny-12x256.gguf", seed=7,
                           shape=Shape(n_layers=12, n_embd=256, n_ff=704))
    cases = [(big, ctx, kv) for ctx in CONTEXTS for kv in KV_TYPES]
    if gemma is not None:
        cases += [(gemma, 4096, "f16"), (gemma, 32768, "f16")]
    rows = [measure(binary, model, {"context_size": ctx, "cache_type_k": kv,
                                    "cache_type_v": kv}, work)
            for model, ctx, kv in cases]
    return {"goal": GOAL, "cases": rows}


def report(result: dict[str, Any]) -> None:
    print(f"{'model':<26} {'ctx':>6} {'kv':>5} {'estimate':>9} {'rss load':>9} "
          f"{'rss req':>9} {'error':>7}  (MiB)")
    for row in result["cases"]:
        print(f"{row['model']:<26} {row['context_size']:>6} {row['cache_type_k']:>5} "
              f"{row['estimate'] / MIB:>9.1f} {row['rss_loaded'] / MIB:>9.1f} "
              f"{row['rss_after_request'] / MIB:>9.1f} {row['error'] * 100:>+6.1f}%")
    worst = max(abs(row["error"]) for row in result["cases"])
    print(f"worst error {worst * 100:.1f} % (goal {GOAL * 100:.0f} %): {verdict(worst <= GOAL)}")
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--gemma", type=Path, help="the quick-start Gemma GGUF file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    return run_in_workdir("memory", args.keep, lambda work: run(work, args.gemma), report,
                          (BenchError, httpx.HTTPError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
