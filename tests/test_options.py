"""The option -> llama-server flag table: one tested table that validation and start share."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from llamactl.backends.llama_cpp.options import (
    DEFAULTS,
    OPTIONS,
    OPTIONS_BY_NAME,
    RESERVED_FLAGS,
    check_extra_args,
    options_to_args,
    validate_options,
)
from llamactl.errors import ValidationFailed

SAMPLE: dict[str, Any] = {
    "int": 3, "float": 0.5, "bool": True, "str": "value", "str_list": ["a.gguf", "b.gguf"],
}


def sample_value(spec: Any) -> Any:
    return spec.choices[0] if spec.kind == "choice" else SAMPLE[spec.kind]


def test_the_seed_options_map_to_their_flags() -> None:
    args = options_to_args(validate_options({"threads": 4, "context_size": 2048,
                                             "gpu_layers": 0}))
    assert args == ["--threads", "4", "--ctx-size", "2048", "--n-gpu-layers", "0"]


def test_every_option_is_snake_case_and_maps_to_one_long_flag() -> None:
    flags = [spec.flag for spec in OPTIONS]
    assert len(flags) == len(set(flags)), "two options share a flag"
    for spec in OPTIONS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name)
        assert spec.flag.startswith("--")
        assert spec.flag not in RESERVED_FLAGS


@pytest.mark.parametrize("spec", OPTIONS, ids=[s.name for s in OPTIONS])
def test_each_option_validates_and_renders(spec: Any) -> None:
    value = sample_value(spec)
    args = options_to_args(validate_options({spec.name: value}))
    if spec.kind == "str_list":
        assert args == [spec.flag, "a.gguf", spec.flag, "b.gguf"]
    elif spec.kind == "bool":
        assert args == [spec.flag]
        off = options_to_args(validate_options({spec.name: False}))
        assert off == ([spec.false_flag] if spec.false_flag else [])
    else:
        assert args == [spec.flag, str(value)]
    with pytest.raises(ValidationFailed) as caught:
        validate_options({spec.name: {"not": "valid"}})
    assert spec.name in str(caught.value.details)


def test_every_flag_exists_in_the_installed_llama_server(llama_server_bin: str) -> None:
    help_text = subprocess.run([llama_server_bin, "--help"], capture_output=True, text=True,
                               timeout=60, check=True).stdout
    known = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w+-]*)", help_text))
    for spec in OPTIONS:
        assert spec.flag in known, f"{spec.name}: {spec.flag} is not a llama-server flag"
        if spec.false_flag:
            assert spec.false_flag in known
    for flag in ("--model", "--host", "--port", "--metrics", "--slots", "--log-prefix",
                 "--log-timestamps"):
        assert flag in known


def help_entries(help_text: str) -> dict[str, str]:
    """Each flag spelling of ``--help``: its whole entry (the head line and the lines under
    it), on one line."""
    entries: dict[str, str] = {}
    entry: list[str] = []
    for line in [*help_text.splitlines(), "-"]:
        if line.startswith(" ") and entry:
            entry.append(line.strip())
            continue
        if entry:
            text = " ".join(entry)
            for flag in re.findall(r"(?<![\w-])(--?[A-Za-z][\w+-]*)", entry[0][:40]):
                entries.setdefault(flag, text)
        entry = [line] if line.startswith("-") else []
    return entries


def said(value: Any) -> tuple[str, ...]:
    """How ``--help`` writes a default: 0.80 for 0.8, enabled or true for True."""
    if value is True:
        return ("enabled", "true")
    if value is False:
        return ("disabled", "false")
    if isinstance(value, float):
        return (f"{value:.2f}", str(value))
    return (str(value),)


def test_the_defaults_the_form_shows_are_llama_servers_own(llama_server_bin: str) -> None:
    """The defaults beside the New instance form's fields (issue 34) are what the installed
    llama-server's --help says; a new build that changes one fails here."""
    help_text = subprocess.run([llama_server_bin, "--help"], capture_output=True, text=True,
                               timeout=60, check=True).stdout
    entries = help_entries(help_text)
    assert DEFAULTS, "the form shows defaults"
    for name, value in DEFAULTS.items():
        entry = entries[OPTIONS_BY_NAME[name].flag]
        assert "default" in entry, f"{name}: no default in --help: {entry}"
        after = entry[entry.index("default") - 20:]
        assert any(re.search(rf"(?<![\w.]){re.escape(text)}(?![\w])", after)
                   for text in said(value)), f"{name}: {value!r} is not in {entry!r}"


@pytest.mark.parametrize(("options", "key"), [
    ({"threads": "4"}, "threads"),
    ({"threads": 1.5}, "threads"),
    ({"threads": True}, "threads"),
    ({"threads": -2}, "threads"),
    ({"temp": "hot"}, "temp"),
    ({"flash_attn": "maybe"}, "flash_attn"),
    ({"alias": ""}, "alias"),
    ({"lora": "one.gguf"}, "lora"),
    ({"jinja": 1}, "jinja"),
    ({"nope": 1}, "nope"),
])
def test_bad_options_name_the_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_options(options)
    assert f"options.{key}" in str(caught.value.details)


def test_numbers_and_aliases() -> None:
    checked = validate_options({"temp": 1, "flash_attn": False, "rope_freq_base": 1e4})
    assert checked == {"temp": 1.0, "flash_attn": "off", "rope_freq_base": 10000.0}
    assert options_to_args(checked) == [
        "--flash-attn", "off", "--rope-freq-base", "10000.0", "--temp", "1.0"
    ]


@pytest.mark.parametrize("args", [["--port", "9"], ["--host=0.0.0.0"], ["-m", "x.gguf"],
                                  ["--api-key", "k"], ["--log-prefix"]])
def test_extra_args_may_not_set_what_llamactl_controls(args: list[str]) -> None:
    with pytest.raises(ValidationFailed):
        check_extra_args(args)


def test_extra_args_pass_other_flags() -> None:
    check_extra_args(["--no-warmup", "--cache-ram", "0"])
    assert "threads" in OPTIONS_BY_NAME


def test_every_flag_that_names_a_file_is_marked(llama_server_bin: str) -> None:
    """Issue 27: the path policy checks the options the table marks (names_path); a flag whose
    value llama-server's --help calls a file, path or folder must be one of them."""
    help_text = subprocess.run([llama_server_bin, "--help"], capture_output=True, text=True,
                               timeout=60, check=True).stdout
    file_flags: set[str] = set()
    for line in help_text.splitlines():
        head = re.match(r"^((?:--?[\w-]+,?\s+)+)([A-Z][A-Z_:,.]*)", line)
        if head and re.search(r"FNAME|FILE|PATH|DIR", head.group(2)):
            file_flags |= set(re.findall(r"--?[\w-]+", head.group(1)))
    assert {"--chat-template-file", "--lora", "--slot-save-path", "--mmproj"} <= file_flags
    for spec in OPTIONS:
        marked = spec.names_path is not None
        assert marked == (spec.flag in file_flags), f"{spec.name}: {spec.flag}"
