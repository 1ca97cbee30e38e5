"""A backend's option table: instance ``options`` (its long flags in snake_case, typed) to
flags. Validation and the argv that a start launches come from one table, so an option that
validates is an option that launches; each backend module declares its table and the flags
llamactl sets itself (refused in options and in ``extra_args``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from llamactl.errors import ValidationFailed
from llamactl.instances.models import OptionValue

Kind = Literal["int", "float", "bool", "str", "choice", "str_list"]
# What an option's value names on the host, for the path policy (security/file_options.py):
# a file or a folder the backend opens; "files": several, a list whose items may also be
# comma-separated (llama-server's --lora); "file_or_text": a file when one is there, else the
# text itself (vLLM's --chat-template).
PathKind = Literal["file", "dir", "files", "file_or_text"]
# Where the New instance form shows an option (issue 34): one collapsed group each.
OptionGroup = Literal["performance", "sampling", "context", "speculative", "multimodal",
                      "server"]


@dataclass(frozen=True)
class OptionSpec:
    name: str
    flag: str
    kind: Kind
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    # For booleans whose backend default is on: the flag that turns them off.
    false_flag: str | None = None
    # For choices that also take a JSON boolean (flash_attn: true -> "on").
    bool_aliases: tuple[str, str] | None = None
    # Set when the value names a file or folder: only admins choose one outside
    # instances.model_dirs, and no one one inside llamactl's data dir (issue 27).
    names_path: PathKind | None = None
    # A folder llamactl gives each instance under its data dir when the option is left out
    # (llama-server's --slot-save-path): only an admin may choose another.
    instance_folder: bool = False
    # For people, not for launching: the form's group, and the backend's own default as its
    # documentation states it (a value, or words such as "auto"); null when it has none.
    group: OptionGroup = "server"
    default: OptionValue | None = None


def placed(options: tuple[OptionSpec, ...], groups: Mapping[OptionGroup, tuple[str, ...]],
           defaults: Mapping[str, OptionValue]) -> tuple[OptionSpec, ...]:
    """``options`` with their form group (those in no group stay in "server") and defaults;
    a name that is not an option is a mistake in the backend's table."""
    group_of = {name: group for group, names in groups.items() for name in names}
    unknown = (set(group_of) | set(defaults)) - {spec.name for spec in options}
    if unknown:
        raise ValueError(f"not options: {sorted(unknown)}")
    return tuple(replace(spec, group=group_of.get(spec.name, "server"),
                         default=defaults.get(spec.name)) for spec in options)


def int_option(name: str, flag: str, help: str, minimum: float | None = None) -> OptionSpec:
    return OptionSpec(name, flag, "int", help, minimum=minimum)


def float_option(name: str, flag: str, help: str, minimum: float | None = None) -> OptionSpec:
    return OptionSpec(name, flag, "float", help, minimum=minimum)


def bool_option(name: str, flag: str, help: str, false_flag: str | None = None) -> OptionSpec:
    return OptionSpec(name, flag, "bool", help, false_flag=false_flag)


def str_option(name: str, flag: str, help: str) -> OptionSpec:
    return OptionSpec(name, flag, "str", help)


def path_option(name: str, flag: str, help: str, names: PathKind = "file") -> OptionSpec:
    """A string option whose value names a file or folder on the host."""
    return OptionSpec(name, flag, "str", help, names_path=names)


def choice_option(name: str, flag: str, help: str, *choices: str) -> OptionSpec:
    return OptionSpec(name, flag, "choice", help, choices=choices)


@dataclass(frozen=True)
class OptionTable:
    options: tuple[OptionSpec, ...]
    reserved_flags: frozenset[str]  # set by llamactl: refused in options and extra_args

    @property
    def by_name(self) -> Mapping[str, OptionSpec]:
        return {spec.name: spec for spec in self.options}

    @property
    def path_options(self) -> tuple[OptionSpec, ...]:
        """The options whose values name files or folders (the path policy checks them)."""
        return tuple(spec for spec in self.options if spec.names_path is not None)

    def validate(self, options: Mapping[str, Any]) -> dict[str, OptionValue]:
        return validate_options(self, options)

    def to_args(self, options: Mapping[str, OptionValue]) -> list[str]:
        return options_to_args(self, options)

    def check_extra_args(self, extra_args: list[str]) -> None:
        check_extra_args(self, extra_args)


def validate_options(table: OptionTable, options: Mapping[str, Any]
                     ) -> dict[str, OptionValue]:
    """Check every option against the table; the first bad one raises with its key named."""
    checked: dict[str, OptionValue] = {}
    by_name = table.by_name
    for key, value in options.items():
        spec = by_name.get(key)
        if spec is None:
            raise ValidationFailed(f"unknown option '{key}'", f"options.{key}: unknown option")
        checked[key] = _check_value(spec, value)
    return checked


def _check_value(spec: OptionSpec, value: Any) -> OptionValue:
    where = f"options.{spec.name}"
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        raise _bad(spec, where, "must be a boolean")
    if spec.kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return _at_least(spec, where, value)
        raise _bad(spec, where, "must be an integer")
    if spec.kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _at_least(spec, where, float(value))
        raise _bad(spec, where, "must be a number")
    if spec.kind == "str":
        if isinstance(value, str) and value and "\x00" not in value:
            return value
        raise _bad(spec, where, "must be a non-empty string")
    if spec.kind == "str_list":
        if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
            return list(value)
        raise _bad(spec, where, "must be a list of non-empty strings")
    if isinstance(value, bool) and spec.bool_aliases is not None:
        return spec.bool_aliases[0] if value else spec.bool_aliases[1]
    if isinstance(value, str) and value in spec.choices:
        return value
    raise _bad(spec, where, f"must be one of {', '.join(spec.choices)}")


def _at_least(spec: OptionSpec, where: str, value: int | float) -> int | float:
    if spec.minimum is not None and value < spec.minimum:
        raise _bad(spec, where, f"must be at least {spec.minimum:g}")
    return value


def _bad(spec: OptionSpec, where: str, problem: str) -> ValidationFailed:
    return ValidationFailed(f"invalid value for option '{spec.name}'", f"{where}: {problem}")


def options_to_args(table: OptionTable, options: Mapping[str, OptionValue]) -> list[str]:
    """The backend's flags for already validated options, in table order."""
    args: list[str] = []
    for spec in table.options:
        if spec.name not in options:
            continue
        value = options[spec.name]
        if spec.kind == "bool":
            if value:
                args.append(spec.flag)
            elif spec.false_flag:
                args.append(spec.false_flag)
        elif spec.kind == "str_list":
            assert isinstance(value, list)
            for item in value:
                args += [spec.flag, item]
        else:
            args += [spec.flag, _format(value)]
    return args


def _format(value: OptionValue) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def check_extra_args(table: OptionTable, extra_args: list[str]) -> None:
    for arg in extra_args:
        flag = arg.split("=", 1)[0]
        if flag in table.reserved_flags:
            raise ValidationFailed(
                f"extra_args may not set {flag}",
                f"extra_args: {flag} is set by llamactl itself",
            )
