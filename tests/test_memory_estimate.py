"""The memory estimate: pure arithmetic over the GGUF header, and a real llama-server's RSS."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from llamactl.backends.llama_cpp import packaged_binary
from llamactl.backends.llama_cpp.memory import (
    LLAMA_SERVER_FIXED_BYTES,
    MIB,
    ModelFacts,
    estimate_llama_cpp,
    read_model_facts,
)
from llamactl.devtools.tiny_model import Shape, write_tiny_model
from tests.support.helpers import free_port

BIG = Shape(n_layers=12, n_embd=256, n_ff=704)

FACTS = ModelFacts(n_layers=32, n_embd=4096, n_head=32, n_head_kv=8, head_dim_k=128,
                   head_dim_v=128, n_ff=14336, n_vocab=128256, n_ctx_train=8192,
                   layer_bytes=32 * 200 * MIB, output_bytes=500 * MIB, other_bytes=500 * MIB)


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "big.gguf", seed=7, shape=BIG)


def test_header_facts_match_the_written_shape(big_model: Path) -> None:
    facts = read_model_facts(big_model)
    assert (facts.n_layers, facts.n_embd, facts.n_ff, facts.n_head_kv) == (12, 256, 704, 4)
    assert facts.head_dim_k == facts.head_dim_v == 64
    assert facts.n_ctx_train == 2048
    total = facts.layer_bytes + facts.output_bytes + facts.other_bytes
    assert total <= big_model.stat().st_size < total + MIB


def test_kv_cache_grows_with_context_exactly_as_llama_cpp_allocates() -> None:
    small = estimate_llama_cpp(FACTS, {"context_size": 4096}, has_gpu=False)
    large = estimate_llama_cpp(FACTS, {"context_size": 8192}, has_gpu=False)
    kv_4096 = 4096 * 32 * 8 * 128 * 2 * 2  # cells x layers x (K + V) width x f16
    mask_growth = 512 * 4096 * 2  # the compute buffer's f16 KQ mask over the extra cells
    assert large.ram - small.ram == kv_4096 + mask_growth
    assert small.vram == large.vram == 0


def test_context_zero_means_the_training_context() -> None:
    unset = estimate_llama_cpp(FACTS, {}, has_gpu=False)
    assert unset == estimate_llama_cpp(FACTS, {"context_size": 8192}, has_gpu=False)
    assert unset == estimate_llama_cpp(FACTS, {"context_size": 0}, has_gpu=False)


def test_quantised_kv_types_shrink_the_cache() -> None:
    f16 = estimate_llama_cpp(FACTS, {"context_size": 8192}, has_gpu=False)
    q8 = estimate_llama_cpp(FACTS, {"context_size": 8192, "cache_type_k": "q8_0",
                                    "cache_type_v": "q8_0"}, has_gpu=False)
    q4_k_only = estimate_llama_cpp(FACTS, {"context_size": 8192, "cache_type_k": "q4_0"},
                                   has_gpu=False)
    per_type = 8192 * 32 * 8 * 128  # elements of K (or of V)
    assert f16.ram - q8.ram == 2 * int(per_type * (2 - 34 / 32))
    assert f16.ram - q4_k_only.ram == int(per_type * (2 - 18 / 32))


def test_parallel_splits_the_context_it_does_not_multiply_it() -> None:
    one = estimate_llama_cpp(FACTS, {"context_size": 4096, "parallel": 1}, has_gpu=False)
    four = estimate_llama_cpp(FACTS, {"context_size": 4096, "parallel": 4}, has_gpu=False)
    assert four.ram - one.ram == 3 * FACTS.n_vocab * 4  # only the logits output buffer


def test_gpu_layers_split_weights_and_kv_between_host_and_device() -> None:
    options = {"context_size": 4096}
    cpu = estimate_llama_cpp(FACTS, options, has_gpu=False)
    half = estimate_llama_cpp(FACTS, options | {"gpu_layers": 16}, has_gpu=True)
    full = estimate_llama_cpp(FACTS, options | {"gpu_layers": 99}, has_gpu=True)
    none = estimate_llama_cpp(FACTS, options | {"gpu_layers": 0}, has_gpu=True)
    assert none.vram == 0
    assert none.ram == cpu.ram
    assert half.vram is not None
    assert full.vram is not None
    assert 0 < half.vram < full.vram
    assert cpu.ram > half.ram > full.ram
    kv_half = 4096 * 16 * 8 * 128 * 2 * 2
    assert half.vram >= 16 * 200 * MIB + kv_half
    assert full.vram >= 32 * 200 * MIB + FACTS.output_bytes
    assert full.ram >= LLAMA_SERVER_FIXED_BYTES + FACTS.other_bytes
    assert estimate_llama_cpp(FACTS, options | {"gpu_layers": -1}, has_gpu=True) == full


def test_flash_attention_off_reserves_the_attention_scores() -> None:
    on = estimate_llama_cpp(FACTS, {"context_size": 4096}, has_gpu=False)
    off = estimate_llama_cpp(FACTS, {"context_size": 4096, "flash_attn": "off"}, has_gpu=False)
    assert off.ram - on.ram == 512 * 32 * 4096 * 4 * 2


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("context_size", [1024, 4096])
def test_measured_rss_of_a_real_llama_server_is_within_15_percent(
    big_model: Path, context_size: int
) -> None:
    binary = shutil.which("llama-server") or packaged_binary()
    assert binary is not None
    port = free_port()
    estimate = estimate_llama_cpp(read_model_facts(big_model),
                                  {"context_size": context_size}, has_gpu=False)
    proc = subprocess.Popen(
        [binary, "-m", str(big_model), "--host", "127.0.0.1",
         "--port", str(port), "-c", str(context_size), "-t", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline
                assert proc.poll() is None
                time.sleep(0.2)
        rss = _rss(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert abs(estimate.ram - rss) / rss < 0.15, (estimate.ram, rss)


def test_facts_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FACTS.n_layers = 1  # type: ignore[misc]


def test_sliding_window_layers_hold_only_the_window() -> None:
    gemma_like = dataclasses.replace(FACTS, n_layers=18, swa_layers=15, n_swa=512)
    small = estimate_llama_cpp(gemma_like, {"context_size": 8192}, has_gpu=False)
    large = estimate_llama_cpp(gemma_like, {"context_size": 32768}, has_gpu=False)
    per_cell_layer = 8 * 128 * 2 * 2
    mask_growth = 512 * (32768 - 8192) * 2
    # Only the 3 full-attention layers grow; the 15 windowed ones stay at 512 x 4 + 512 cells.
    assert large.ram - small.ram == 3 * (32768 - 8192) * per_cell_layer + mask_growth
    full = estimate_llama_cpp(gemma_like, {"context_size": 8192, "swa_full": True},
                              has_gpu=False)
    assert full.ram - small.ram == 15 * (8192 - 2560) * per_cell_layer
