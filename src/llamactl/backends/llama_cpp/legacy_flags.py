"""Flags of older llama-server releases that command lines people paste still carry.

Build 11434 replaced ``--mlock`` and ``--no-mmap`` by ``--load-mode`` and no longer lists
some switches in ``--help``; an imported command keeps its meaning (``load_mode``) rather
than passing a flag the binary would refuse at start, and a retired switch is never read as
taking the next word for its value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llamactl.backends.command_import import Imported

# Switches of earlier releases (none takes a value).
OLD_SWITCHES = frozenset({
    "--mlock", "--no-mmap", "--mmap", "--cont-batching", "--no-cont-batching", "--embedding",
    "--embeddings", "--reranking", "--rerank", "--jinja", "--no-jinja", "--metrics", "--slots",
    "--no-slots", "--props", "--verbose", "--log-disable", "--no-warmup", "--check-tensors",
    "--no-kv-offload", "--ctx-shift", "--no-context-shift", "--special", "--no-webui",
    "--swa-full", "--kv-unified", "--cpu-moe", "--escape", "--no-escape", "--ignore-eos",
    "--no-perf", "--offline", "--no-op-offload", "--log-prefix", "--log-timestamps",
    "--no-log-prefix", "--no-log-timestamps", "-cb", "-nocb", "-kvu", "-cmoe",
})

# --mlock and --no-mmap, alone or together, as the load mode that means the same.
_LOAD_MODES = {
    ("--mlock", "auto"): "mmap+mlock", ("--mlock", "mmap"): "mmap+mlock",
    ("--mlock", "none"): "mlock",
    ("--no-mmap", "mmap"): "none",
    ("--no-mmap", "auto"): "none", ("--no-mmap", "mmap+mlock"): "mlock",
}


def legacy_flag(flag: str, imported: Imported) -> bool:
    """Take ``--mlock``/``--no-mmap`` as ``load_mode``; True when ``flag`` was one."""
    if flag not in ("--mlock", "--no-mmap"):
        return False
    current = str(imported.options.get("load_mode", "auto"))
    imported.options["load_mode"] = _LOAD_MODES.get((flag, current), current)
    return True
