"""Importing a pasted llama-server command line: which words are values is decided by the
flags llamactl types, the binary's own --help table and the switches of older releases,
never by guessing that an unknown flag takes the next word."""

from __future__ import annotations

from typing import Any

import pytest

from llamactl.backends.command_import import import_command
from llamactl.backends.llama_cpp import LLAMA_CPP
from llamactl.backends.llama_cpp.help_table import FLAGS
from llamactl.devtools.llama_help import TARGET, help_text, parse, render, version_of


def imported(command: str) -> dict[str, Any]:
    return import_command(command, "llama_cpp", LLAMA_CPP.syntax, LLAMA_CPP.table).answer()


@pytest.mark.parametrize(("command", "options", "extra_args"), [
    ("llama-server -m /m.gguf --mlock -c 4096", {"load_mode": "mmap+mlock",
                                                 "context_size": 4096}, []),
    ("llama-server -m /m.gguf --no-mmap -c 4096", {"load_mode": "none",
                                                   "context_size": 4096}, []),
    ("llama-server -m /m.gguf --no-mmap --mlock", {"load_mode": "mlock"}, []),
    ("llama-server -m /m.gguf -c 2048 -ngl 99 --temp 0.7 --host 0.0.0.0",
     {"context_size": 2048, "gpu_layers": 99, "temp": 0.7}, []),
    ("llama-server -m /m.gguf -fa -c 512", {"flash_attn": "on", "context_size": 512}, []),
    ("llama-server -m /m.gguf -fa off", {"flash_attn": "off"}, []),
    ("llama-server -m /m.gguf --control-vector-layer-range 2 4 -c 512",
     {"context_size": 512}, ["--control-vector-layer-range", "2", "4"]),
    ("llama-server -m /m.gguf --brand-new-switch -c 512", {"context_size": 512},
     ["--brand-new-switch"]),
    ("llama-server -m /m.gguf --brand-new-flag -1", {}, ["--brand-new-flag", "-1"]),
])
def test_values_are_the_words_each_flag_takes(command: str, options: dict[str, Any],
                                              extra_args: list[str]) -> None:
    instance = imported(command)["instance"]
    assert instance["options"] == options
    assert instance["extra_args"] == extra_args


def test_a_second_spelling_of_a_typed_flag_is_its_option() -> None:
    assert imported("llama-server -m /m.gguf --gpu-layers 12 --temperature 0.5")[
        "instance"]["options"] == {"gpu_layers": 12, "temp": 0.5}


@pytest.mark.llama
def test_the_committed_flag_table_is_the_installed_llama_servers(llama_server_bin: str) -> None:
    table = parse(help_text(llama_server_bin))
    assert "--ctx-size" in table
    assert table["-c"] == (("-c", "--ctx-size"), 1)
    assert render(table, version_of(llama_server_bin)) == TARGET.read_text(), (
        "backends/llama_cpp/help_table.py is stale: run "
        ".venv/bin/python -m llamactl.devtools.llama_help")
    assert table == FLAGS
