"""The one table from instance ``options`` to llama-server flags.

Each option is a llama-server long flag in snake_case with a type. Validation and the argv
that ``start`` launches both come from this table, so an option that validates is an option
that launches, and a test walks the whole table. Flags that llamactl itself controls
(``--host``, ``--port``, ``--model``, ``--api-key``...) are not options: see RESERVED_FLAGS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llamactl.backends.option_table import (
    OptionGroup,
    OptionSpec,
    OptionTable,
    placed,
)
from llamactl.backends.option_table import bool_option as _bool
from llamactl.backends.option_table import choice_option as _choice
from llamactl.backends.option_table import float_option as _float
from llamactl.backends.option_table import int_option as _int
from llamactl.backends.option_table import path_option as _path
from llamactl.backends.option_table import str_option as _str
from llamactl.instances.models import OptionValue

_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")

_OPTIONS: tuple[OptionSpec, ...] = (
    # The seed's three.
    _int("threads", "--threads", "CPU threads for generation (-1: auto)", minimum=-1),
    _int("context_size", "--ctx-size", "prompt context size (0: from the model)", minimum=0),
    _int("gpu_layers", "--n-gpu-layers", "layers to offload to the GPU (-1: all)", minimum=-1),
    # CPU and batching.
    _int("threads_batch", "--threads-batch", "threads for batch and prompt processing", -1),
    _int("threads_http", "--threads-http", "threads for the HTTP server", minimum=-1),
    _int("batch_size", "--batch-size", "logical maximum batch size", minimum=1),
    _int("ubatch_size", "--ubatch-size", "physical maximum batch size", minimum=1),
    _int("parallel", "--parallel", "number of server slots (-1: auto)", minimum=-1),
    _bool("cont_batching", "--cont-batching", "continuous batching", "--no-cont-batching"),
    _int("n_predict", "--n-predict", "default tokens to predict (-1: infinite)", minimum=-1),
    _int("keep", "--keep", "tokens to keep from the initial prompt", minimum=-1),
    _choice("numa", "--numa", "NUMA optimisations", "distribute", "isolate", "numactl"),
    # Memory and GPU placement.
    OptionSpec(
        "flash_attn", "--flash-attn", "choice", "flash attention",
        choices=("on", "off", "auto"), bool_aliases=("on", "off"),
    ),
    _choice("load_mode", "--load-mode", "how the model is loaded (mlock keeps it in RAM)",
            "auto", "none", "mmap", "mlock", "mmap+mlock", "dio"),
    _choice("cache_type_k", "--cache-type-k", "KV cache type for K", *_CACHE_TYPES),
    _choice("cache_type_v", "--cache-type-v", "KV cache type for V", *_CACHE_TYPES),
    _int("main_gpu", "--main-gpu", "GPU for the model (split_mode none) or scratch", minimum=0),
    _choice("split_mode", "--split-mode", "how to split across GPUs",
            "none", "layer", "row", "tensor"),
    _str("tensor_split", "--tensor-split", "fraction per GPU, comma separated, e.g. 3,1"),
    _int("n_cpu_moe", "--n-cpu-moe", "MoE expert layers kept on the CPU", minimum=0),
    _bool("cpu_moe", "--cpu-moe", "keep all MoE expert weights on the CPU"),
    _str("device", "--device", "comma-separated devices to offload to (none: no offload)"),
    _bool("kv_unified", "--kv-unified", "one KV buffer shared by all slots", "--no-kv-unified"),
    _bool("swa_full", "--swa-full", "full-size SWA cache"),
    _int("cache_reuse", "--cache-reuse", "min chunk size to reuse from the cache", minimum=0),
    # RoPE and context extension.
    _choice("rope_scaling", "--rope-scaling", "RoPE frequency scaling", "none", "linear", "yarn"),
    _float("rope_scale", "--rope-scale", "RoPE context scaling factor", minimum=0),
    _float("rope_freq_base", "--rope-freq-base", "RoPE base frequency", minimum=0),
    _float("rope_freq_scale", "--rope-freq-scale", "RoPE frequency scaling factor", 0),
    _int("yarn_orig_ctx", "--yarn-orig-ctx", "YaRN original context size", minimum=0),
    # Sampling defaults for requests that do not set them.
    _int("seed", "--seed", "RNG seed (-1: random)", minimum=-1),
    _float("temp", "--temp", "temperature", minimum=0),
    _int("top_k", "--top-k", "top-k sampling (0: off)", minimum=0),
    _float("top_p", "--top-p", "top-p sampling (1.0: off)", minimum=0),
    _float("min_p", "--min-p", "min-p sampling (0.0: off)", minimum=0),
    _float("repeat_penalty", "--repeat-penalty", "repeat penalty (1.0: off)", minimum=0),
    _int("repeat_last_n", "--repeat-last-n", "tokens considered for the penalty", minimum=-1),
    _float("presence_penalty", "--presence-penalty", "presence penalty (0.0: off)"),
    _float("frequency_penalty", "--frequency-penalty", "frequency penalty (0.0: off)"),
    # Model behaviour and templates.
    _str("alias", "--alias", "model name reported by the server"),
    _str("chat_template", "--chat-template", "built-in template name or a Jinja template"),
    _path("chat_template_file", "--chat-template-file", "file holding a Jinja chat template"),
    _bool("jinja", "--jinja", "use the Jinja template engine for chat", "--no-jinja"),
    _choice("reasoning", "--reasoning", "reasoning/thinking in chat", "on", "off", "auto"),
    _choice("reasoning_format", "--reasoning-format", "where reasoning goes",
            "none", "deepseek", "deepseek-legacy", "auto"),
    _int("reasoning_budget", "--reasoning-budget", "thinking budget (-1: unlimited, 0: off)", -1),
    _bool("embedding", "--embedding", "serve only embeddings"),
    _bool("reranking", "--reranking", "serve the reranking endpoint"),
    _choice("pooling", "--pooling", "embedding pooling", "none", "mean", "cls", "last", "rank"),
    _path("mmproj", "--mmproj", "multimodal projector file"),
    # llama-server also splits each --lora value on commas: every part is a file.
    OptionSpec("lora", "--lora", "str_list", "LoRA adapter files, applied in order",
               names_path="files"),
    _path("model_draft", "--spec-draft-model", "draft model for speculative decoding"),
    _int("draft_max", "--spec-draft-n-max", "tokens to draft for speculative decoding", 0),
    _int("draft_min", "--spec-draft-n-min", "minimum draft tokens", minimum=0),
    _int("gpu_layers_draft", "--spec-draft-ngl", "draft model layers on the GPU", -1),
    # Server behaviour.
    _int("timeout", "--timeout", "server read/write timeout in seconds", minimum=1),
    OptionSpec("slot_save_path", "--slot-save-path", "str",
               "where slot KV caches are saved (default: a folder of the instance's own "
               "under the data dir; only an admin may choose another)",
               names_path="dir", instance_folder=True),
    _bool("webui", "--webui", "serve llama-server's web UI", "--no-webui"),
    _bool("verbose", "--verbose", "log everything (debug level)"),
    _int("log_verbosity", "--log-verbosity", "log verbosity threshold", minimum=0),
)

# The New instance form's groups (issue 34); the rest is "server".
_GROUPS: Mapping[OptionGroup, tuple[str, ...]] = {
    "performance": ("threads", "gpu_layers", "threads_batch", "threads_http", "batch_size",
                    "ubatch_size", "parallel", "cont_batching", "numa", "flash_attn",
                    "load_mode", "cache_type_k", "cache_type_v", "main_gpu", "split_mode",
                    "tensor_split", "n_cpu_moe", "cpu_moe", "device", "kv_unified"),
    "context": ("context_size", "n_predict", "keep", "swa_full", "cache_reuse", "rope_scaling",
                "rope_scale", "rope_freq_base", "rope_freq_scale", "yarn_orig_ctx"),
    "sampling": ("seed", "temp", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n",
                 "presence_penalty", "frequency_penalty", "reasoning", "reasoning_format",
                 "reasoning_budget"),
    "speculative": ("model_draft", "draft_max", "draft_min", "gpu_layers_draft"),
    "multimodal": ("mmproj",),
}

# llama-server's defaults as its --help states them (build 11434; tests/test_options.py
# reads them in the installed binary's --help). Shown by the form, never sent.
DEFAULTS: Mapping[str, OptionValue] = {
    "threads": -1, "context_size": 0, "gpu_layers": "auto", "threads_http": -1,
    "batch_size": 2048, "ubatch_size": 512, "parallel": -1, "cont_batching": True,
    "n_predict": -1, "keep": 0, "flash_attn": "auto", "load_mode": "auto",
    "cache_type_k": "f16", "cache_type_v": "f16", "main_gpu": 0, "split_mode": "layer",
    "swa_full": False, "cache_reuse": 0, "seed": -1, "temp": 0.8, "top_k": 40, "top_p": 0.95,
    "min_p": 0.05, "repeat_penalty": 1.0, "repeat_last_n": 64, "presence_penalty": 0.0,
    "frequency_penalty": 0.0, "jinja": True, "reasoning": "auto", "reasoning_format": "auto",
    "reasoning_budget": -1, "embedding": False, "draft_max": 3, "draft_min": 0,
    "gpu_layers_draft": "auto", "timeout": 3600, "webui": True,
}

OPTIONS: tuple[OptionSpec, ...] = placed(_OPTIONS, _GROUPS, DEFAULTS)

OPTIONS_BY_NAME: Mapping[str, OptionSpec] = {spec.name: spec for spec in OPTIONS}

# Flags that llamactl sets itself; neither an option nor extra_args may set them, or the
# instance would listen where llamactl does not look, or without the key the gateway adds.
RESERVED_FLAGS: frozenset[str] = frozenset({
    "-m", "--model", "--host", "--port", "--api-key", "--api-key-file", "--metrics", "--slots",
    "--log-file", "-hf", "--hf-repo", "-mu", "--model-url", "--path", "--log-prefix",
    "--log-timestamps", "--no-log-prefix", "--no-log-timestamps",
})


TABLE = OptionTable(OPTIONS, RESERVED_FLAGS)


def validate_options(options: Mapping[str, Any]) -> dict[str, OptionValue]:
    return TABLE.validate(options)


def options_to_args(options: Mapping[str, OptionValue]) -> list[str]:
    return TABLE.to_args(options)


def check_extra_args(extra_args: list[str]) -> None:
    TABLE.check_extra_args(extra_args)
