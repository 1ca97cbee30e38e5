"""Importing a command line (``llama-server -m x.gguf -c 4096 ...``) as an instance.

One parser for every backend, driven by the backend's option table and its ``CommandSyntax``:
which programs it is, where the model and the port are, its short flags and its environment
variables. Tokens are split as a shell would (``shlex``); the flags llamactl sets itself go to
``ignored``, flags the table does not know go to ``extra_args`` as they were, and a value that
does not fit its option is a 400 naming the token.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llamactl.backends.option_table import OptionSpec, OptionTable
from llamactl.errors import ValidationFailed


@dataclass(frozen=True)
class CommandSyntax:
    programs: frozenset[str]  # the program's names (a path's last part is matched)
    model_flags: frozenset[str] = frozenset()
    port_flags: frozenset[str] = frozenset({"--port"})
    subcommand: str | None = None  # "serve" for vllm
    positional_model: bool = False  # vllm serve <model>
    short_flags: dict[str, str] = field(default_factory=dict)  # "-c" -> "--ctx-size"
    env_prefix: str | None = None  # LLAMA_ARG_CTX_SIZE=4096 -> --ctx-size 4096
    # Flags known to take no value: reserved ones, and those of older releases that the
    # program's own table (below) no longer lists.
    switches: frozenset[str] = frozenset()
    # The program's own flag table (its --help): each spelling, all spellings of that flag,
    # and its words of value (0 a switch, -1 an optional value). A flag in neither table
    # takes a value unless the next word is a flag.
    help_flags: Mapping[str, tuple[tuple[str, ...], int]] = field(default_factory=dict)
    # Older flags with a new spelling as an option: True when it took the flag.
    legacy: Callable[[str, Imported], bool] | None = None


@dataclass
class Imported:
    backend: str
    model_path: str | None = None
    port: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {"instance": {"backend": self.backend, "model_path": self.model_path,
                             "port": self.port, "options": self.options,
                             "extra_args": self.extra_args},
                "ignored": self.ignored}


def import_command(command: str, backend: str, syntax: CommandSyntax,
                   table: OptionTable) -> Imported:
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        raise _bad(f"command: cannot be split as a shell would ({exc})") from None
    imported = Imported(backend)
    args = _environment(tokens, syntax, imported)
    args = _program(args, backend, syntax)
    _arguments(args, syntax, table, imported)
    if imported.model_path is None:
        raise _bad("command: names no model")
    return imported


def _environment(tokens: list[str], syntax: CommandSyntax, imported: Imported) -> list[str]:
    """Leading NAME=value words: the backend's own variables become its flags."""
    flags: list[str] = []
    index = 0
    while index < len(tokens) and "=" in tokens[index] and not tokens[index].startswith("-"):
        name, value = tokens[index].split("=", 1)
        if syntax.env_prefix and name.startswith(syntax.env_prefix):
            flag = "--" + name[len(syntax.env_prefix):].lower().replace("_", "-")
            flags.append(f"{flag}={value}")
        else:
            imported.ignored.append(tokens[index])
        index += 1
    return tokens[index:] + flags


def _program(tokens: list[str], backend: str, syntax: CommandSyntax) -> list[str]:
    words = list(tokens)
    if words and os.path.basename(words[0]).startswith("python"):
        words = words[2:] if len(words) > 2 and words[1] == "-m" else words[1:]
    if not words or os.path.basename(words[0]) not in syntax.programs:
        found = words[0] if words else "(nothing)"
        raise _bad(f"command: '{found}' is not a {backend} command "
                   f"({' or '.join(sorted(syntax.programs))})")
    words = words[1:]
    if syntax.subcommand is not None:
        if not words or words[0] != syntax.subcommand:
            raise _bad(f"command: expected '{syntax.subcommand}' after the program")
        words = words[1:]
    return words


def _arguments(args: list[str], syntax: CommandSyntax, table: OptionTable,
               imported: Imported) -> None:
    specs = {spec.flag: spec for spec in table.options}
    false_flags = {spec.false_flag: spec for spec in table.options if spec.false_flag}
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if not token.startswith("-"):
            if syntax.positional_model and imported.model_path is None:
                imported.model_path = token
                continue
            raise _bad(f"command: unexpected '{token}'")
        flag, equals, inline = token.partition("=")
        flag = _known_spelling(syntax.short_flags.get(flag, flag), syntax, specs, false_flags)
        if not equals and syntax.legacy is not None and syntax.legacy(flag, imported):
            continue
        words = 0 if equals else _value_words(flag, syntax, specs, false_flags,
                                              args[index:index + 1])
        values = args[index:index + words]
        index += len(values)
        value: str | None = inline if equals else (values[0] if values else None)
        written = [token, *values]
        if flag in syntax.model_flags or flag in syntax.port_flags:
            _placement(flag, value, syntax, imported)
        elif flag in table.reserved_flags:
            imported.ignored += written
        elif flag in specs:
            _option(specs[flag], value, token, imported, inline=bool(equals))
        elif flag in false_flags:
            imported.options[false_flags[flag].name] = False
        else:
            imported.extra_args += written


def _known_spelling(flag: str, syntax: CommandSyntax, specs: Mapping[str, OptionSpec],
                    false_flags: Mapping[str, OptionSpec]) -> str:
    """The spelling of ``flag`` that llamactl's table uses, when the program's own table
    says another spelling is the same flag (``--gpu-layers`` for ``--n-gpu-layers``)."""
    if flag in specs or flag in false_flags or flag not in syntax.help_flags:
        return flag
    spellings, _words = syntax.help_flags[flag]
    return next((s for s in spellings if s in specs or s in false_flags), flag)


def _value_words(flag: str, syntax: CommandSyntax, specs: Mapping[str, OptionSpec],
                 false_flags: Mapping[str, OptionSpec], following: list[str]) -> int:
    """How many of the next words are ``flag``'s value."""
    next_is_value = bool(following) and not _is_flag(following[0])
    if flag in syntax.switches or flag in false_flags:
        return 0
    words = syntax.help_flags[flag][1] if flag in syntax.help_flags else -1
    if flag in specs:
        if specs[flag].kind == "bool":
            return 0
        words = words if words < 0 and specs[flag].bool_aliases else 1
    return int(next_is_value) if words < 0 else words


def _is_flag(word: str) -> bool:
    """``-c`` is a flag, ``-1`` is a value."""
    return word.startswith("-") and not word[1:2].isdigit() and word != "-"


def _placement(flag: str, value: str | None, syntax: CommandSyntax,
               imported: Imported) -> None:
    if value is None:
        raise _bad(f"command: {flag} needs a value")
    if flag in syntax.model_flags:
        imported.model_path = value
        return
    if not value.isdigit() or not 1024 <= int(value) <= 65535:
        raise _bad(f"command: {flag} {value} is not a port llamactl can use (1024-65535)")
    imported.port = int(value)


_TRUE = frozenset({"1", "true", "on", "yes", "enabled"})
_FALSE = frozenset({"0", "false", "off", "no", "disabled"})


def _option(spec: OptionSpec, value: str | None, token: str, imported: Imported, *,
            inline: bool) -> None:
    if spec.kind == "bool":
        if inline and value is not None and value.lower() not in _TRUE | _FALSE:
            raise _bad(f"command: {token}: not a boolean")
        imported.options[spec.name] = not (inline and value is not None
                                           and value.lower() in _FALSE)
        return
    if value is None and spec.bool_aliases is not None:
        value = spec.bool_aliases[0]  # -fa alone: on
    if value is None:
        raise _bad(f"command: {token} needs a value")
    try:
        converted: Any = {"int": int, "float": float}.get(spec.kind, str)(value)
    except ValueError:
        what = "an integer" if spec.kind == "int" else "a number"
        raise _bad(f"command: {token} {value}: not {what}") from None
    if spec.kind == "str_list":
        imported.options.setdefault(spec.name, []).append(value)
    elif spec.kind == "choice" and value not in spec.choices:
        raise _bad(f"command: {token} {value}: one of {', '.join(spec.choices)}")
    else:
        imported.options[spec.name] = converted


def _bad(details: str) -> ValidationFailed:
    return ValidationFailed("The command line cannot be imported", details)
