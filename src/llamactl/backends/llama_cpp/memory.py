"""How much memory a llama-server instance will take, from the GGUF header and its options.

Pure arithmetic over two inputs: :class:`ModelFacts` (read from the file's header only, see
:func:`read_model_facts`) and the instance's ``options`` (the keys of
``llamactl.backends.llama_cpp.options``). :func:`estimate_llama_cpp` is the one call the
backend (``LlamaCpp.memory``) makes.

What llama.cpp allocates, and how each part is counted here (checked against llama-server's
own buffer report with ``-lv 4``, build 11434):

- weights: the tensor data; the repeating layers move to the device by ``gpu_layers`` over
  the block count, the output layer when every block is offloaded; token embeddings stay on
  the host.
- KV cache: ``n_ctx`` cells x layers x (K width x bytes of ``cache_type_k`` + V width x bytes
  of ``cache_type_v``). In this llama.cpp ``n_ctx`` is the total over all slots: ``parallel``
  splits it, it does not multiply it (measured: -c 4096 with -np 1, 2 and 4 give 48 MiB).
- compute buffer: with flash attention, ubatch x (the f16 KQ mask over n_ctx + the FFN and
  residual activations); without it, the f32 attention scores of every head as well.
- a fixed cost per llama-server process (code, libraries, threads, HTTP server): measured as
  the RSS of a llama-server with the tiny model at minimal context, less its buffers.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamactl.backends.base import MemoryEstimate
from llamactl.backends.llama_cpp.header_reader import read_header
from llamactl.errors import StartupError

MIB = 1024 * 1024
# Measured: llama-server (build 11434, CPU) with the 0.5 MiB tiny model at -c 256 holds
# 21.6 MiB RSS after load; its model, KV and output buffers are 0.64 MiB. The same remainder
# (20.8-21.6 MiB) was found for a 38 MiB model from -c 1024 to -c 8192 (bench/memory.py).
LLAMA_SERVER_FIXED_BYTES = 21 * MIB
DEFAULT_UBATCH = 512
DEFAULT_PARALLEL = 4  # llama-server's "auto"

# Architectures whose layers alternate sliding-window and full attention, as llama.cpp sets
# them (not in the GGUF header): one full layer in every N.
SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4}

# Bytes per element of each KV cache type (ggml block size / elements per block).
CACHE_TYPE_BYTES: dict[str, float] = {
    "f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "q4_1": 20 / 32,
    "iq4_nl": 18 / 32, "q5_0": 22 / 32, "q5_1": 24 / 32,
}


@dataclass(frozen=True)
class ModelFacts:
    """What the estimate needs from a GGUF header."""

    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ff: int
    n_vocab: int
    n_ctx_train: int
    layer_bytes: int  # tensor data of the repeating blocks (blk.*)
    output_bytes: int  # output head and final norm
    other_bytes: int  # token embeddings and the rest: always on the host
    # Sliding-window attention (Gemma 2/3): how many layers use a window, and its width.
    swa_layers: int = 0
    n_swa: int = 0


def estimate_llama_cpp(
    facts: ModelFacts, options: Mapping[str, Any], *, has_gpu: bool
) -> MemoryEstimate:
    """RAM and VRAM in bytes for llama-server serving ``facts`` with ``options``.

    ``has_gpu``: whether the machine offloads at all; without one every buffer is on the host
    and ``vram`` is 0."""
    n_ctx = kv_cells(facts, options)
    on_device = _device_layers(facts, options) if has_gpu else 0
    weights_device = facts.layer_bytes * min(on_device, facts.n_layers) // max(facts.n_layers, 1)
    if on_device > facts.n_layers:  # llama.cpp offloads the output layer last
        weights_device += facts.output_bytes
    weights_total = facts.layer_bytes + facts.output_bytes + facts.other_bytes
    kv_total = kv_bytes(facts, options, n_ctx)
    kv_device = kv_total * min(on_device, facts.n_layers) // max(facts.n_layers, 1)
    kv_host = kv_total - kv_device
    compute = compute_bytes(facts, options, n_ctx)
    parallel = _int_option(options, "parallel", DEFAULT_PARALLEL, auto=-1)
    output = facts.n_vocab * 4 * parallel
    if on_device:
        ram = LLAMA_SERVER_FIXED_BYTES + weights_total - weights_device + kv_host + output
        return MemoryEstimate(ram, weights_device + kv_device + compute)
    ram = LLAMA_SERVER_FIXED_BYTES + weights_total + kv_host + compute + output
    return MemoryEstimate(ram, 0)


def kv_cells(facts: ModelFacts, options: Mapping[str, Any]) -> int:
    """The KV cache's size in cells: ``context_size``, or the training context when 0/unset,
    rounded up to 256 as llama.cpp pads it."""
    ctx = _int_option(options, "context_size", 0) or facts.n_ctx_train
    return -(-ctx // 256) * 256


def kv_bytes(facts: ModelFacts, options: Mapping[str, Any], n_ctx: int) -> int:
    """The KV cache. Sliding-window layers hold only window x slots + ubatch cells (padded),
    unless ``swa_full``."""
    k_type = str(options.get("cache_type_k") or "f16")
    v_type = str(options.get("cache_type_v") or "f16")
    k_width = facts.n_head_kv * facts.head_dim_k * CACHE_TYPE_BYTES.get(k_type, 2.0)
    v_width = facts.n_head_kv * facts.head_dim_v * CACHE_TYPE_BYTES.get(v_type, 2.0)
    swa_cells = n_ctx
    if facts.swa_layers and not options.get("swa_full"):
        slots = _int_option(options, "parallel", DEFAULT_PARALLEL, auto=-1)
        window = facts.n_swa * slots + _int_option(options, "ubatch_size", DEFAULT_UBATCH)
        swa_cells = min(n_ctx, -(-window // 256) * 256)
    cells = n_ctx * (facts.n_layers - facts.swa_layers) + swa_cells * facts.swa_layers
    return int(cells * (k_width + v_width))


def compute_bytes(facts: ModelFacts, options: Mapping[str, Any], n_ctx: int) -> int:
    """The scheduler's compute buffer: its peak is one ubatch through attention and FFN."""
    ubatch = _int_option(options, "ubatch_size", DEFAULT_UBATCH)
    # Fitted to llama-server's reports: 10.64 MiB (38 MiB model, -c 4096), 3.14 MiB (tiny).
    per_token = n_ctx * 2 + 2 * facts.n_ff * 4 + 8 * facts.n_embd * 4
    if options.get("flash_attn") in ("off", False):
        per_token += facts.n_head * n_ctx * 4 * 2  # KQ scores and their softmax, f32
    return ubatch * per_token


def _device_layers(facts: ModelFacts, options: Mapping[str, Any]) -> int:
    layers = _int_option(options, "gpu_layers", -1)
    return facts.n_layers + 1 if layers < 0 else min(layers, facts.n_layers + 1)


def _int_option(options: Mapping[str, Any], key: str, default: int, *, auto: int = -2) -> int:
    value = options.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value == auto:
        return default
    return value


def require_gguf() -> None:
    """StartupError when gguf, a dependency, cannot be found (a broken install): every memory
    estimate would be null and the memory budget off, with nothing said but an info line."""
    if importlib.util.find_spec("gguf") is None:
        raise StartupError("the gguf package is missing, and with it memory estimates and "
                           "the memory budget: reinstall llamactl-server "
                           "(pip install llamactl-server)")


def read_model_facts(path: Path) -> ModelFacts:
    """Read a GGUF file's header (metadata and tensor table; the data is not read), with the
    forward reader: gguf's own imports numpy (18 MB kept by every server that estimated)."""
    return model_facts(read_header(path))


def tensor_bytes(reader: Any) -> tuple[int, int, int]:
    """The tensor data of a GGUF reader's file: repeating blocks, output head, the rest."""
    layer = output = other = 0
    for tensor in reader.tensors:
        size = int(tensor.n_bytes)
        if tensor.name.startswith("blk."):
            layer += size
        elif tensor.name.startswith("output"):
            output += size
        else:
            other += size
    return layer, output, other


def model_facts(reader: Any) -> ModelFacts:
    """What the estimate needs, from an open ``gguf.GGUFReader`` (the model library reads
    its files' headers once for everything it shows)."""
    arch = field_value(reader, "general.architecture", "llama")

    def num(key: str, default: int = 0) -> int:
        value = field_value(reader, f"{arch}.{key}", default)
        return int(value[0] if isinstance(value, list) else value)

    n_embd, n_head = num("embedding_length"), num("attention.head_count", 1)
    head_dim = n_embd // max(n_head, 1)
    layer, output, other = tensor_bytes(reader)
    n_layers, n_swa = num("block_count"), num("attention.sliding_window")
    pattern = SWA_PATTERN.get(str(arch))
    swa_layers = n_layers - n_layers // pattern if pattern and n_swa else 0
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    n_vocab = int(field_value(reader, f"{arch}.vocab_size", 0)) or (
        len(tokens.data) if tokens is not None else 0)
    return ModelFacts(
        n_layers=n_layers, n_embd=n_embd, n_head=n_head,
        n_head_kv=num("attention.head_count_kv", n_head),
        head_dim_k=num("attention.key_length", head_dim),
        head_dim_v=num("attention.value_length", head_dim), n_ff=num("feed_forward_length"),
        n_vocab=n_vocab, n_ctx_train=num("context_length", 4096),
        layer_bytes=layer, output_bytes=output, other_bytes=other, swa_layers=swa_layers,
        n_swa=n_swa)


def field_value(reader: Any, key: str, default: Any) -> Any:
    """A metadata value of a GGUF reader's file, or ``default``."""
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()
