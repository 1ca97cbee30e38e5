"""Which files and folders an instance's options may name (issue 27).

Typed options name files the backend reads or writes: ``chat_template_file`` pointed at the
data dir's ``auth_secret`` put the token-signing secret into ``/props``, ``slot_save_path``
wrote files into any folder. The option tables mark such options (``OptionSpec.names_path``);
this module is the one policy for them:

- for everyone, admins included, no such path resolves (symlinks and ``..`` followed) into
  llamactl's data dir, to its config file, or into the config file's folder (but for model
  folders an admin placed inside it);
- for a caller below admin, the path is absolute, names a place inside
  ``instances.model_dirs`` and resolves inside one (refused when ``model_dirs`` is empty), and
  a per-instance folder option (``slot_save_path``) is not theirs to choose;
- at every launch the same paths are checked again: a symlink retargeted since the create
  fails the start. The launch knows no caller, so it tells an admin's path by what it names:
  a path naming a place inside ``model_dirs`` must still resolve inside, and only an admin can
  have set one naming a place outside.

Where an option is left out and the table gives it a folder of its own
(``OptionSpec.instance_folder``), each instance gets ``<data_dir>/instances/<name>/<option>``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from llamactl.backends.option_table import OptionSpec, OptionTable
from llamactl.errors import ValidationFailed
from llamactl.instances.models import OptionValue

# vLLM takes a --chat-template holding any of these as the template itself when no file of
# that name exists (vllm/entrypoints/chat_utils.py, load_chat_template).
_TEMPLATE_CHARACTERS = ("{", "}", "\n")


@dataclass(frozen=True)
class FilePolicy:
    """The places the policy knows: llamactl's own, and the allowed model folders."""

    data_dir: Path | None
    config_path: Path | None
    model_dirs: Sequence[Path]

    def protected(self) -> list[tuple[Path, str]]:
        """Folders and files no option may name, each with what to call it."""
        places: list[tuple[Path, str]] = []
        if self.data_dir is not None:
            places.append((self.data_dir.resolve(), "llamactl's data dir"))
        if self.config_path is not None:
            places.append((self.config_path.resolve(), "llamactl's config file"))
        return places

    def config_folder(self) -> Path | None:
        return None if self.config_path is None else self.config_path.resolve().parent

    def instance_folder(self, instance: str, option: str) -> Path | None:
        if self.data_dir is None:
            return None
        return self.data_dir / "instances" / instance / option


def check_new_options(table: OptionTable, options: Mapping[str, OptionValue],
                      policy: FilePolicy, *, admin: bool) -> None:
    """At create and update: ValidationFailed naming the first option whose path the caller
    may not use (``options`` are the ones the caller set)."""
    for spec, path in _named_paths(table, options):
        if spec.instance_folder and not admin:
            raise _refused(spec, "only an admin may choose it; each instance gets a folder "
                                 "of its own under llamactl's data dir")
        problem = _protected_problem(path, policy) or (
            None if admin else _outside_problem(path, policy.model_dirs))
        if problem is not None:
            raise _refused(spec, problem)


def launch_problem(table: OptionTable, options: Mapping[str, OptionValue],
                   policy: FilePolicy) -> str | None:
    """At launch: why the options may not be launched as they are now, or None."""
    for spec, path in _named_paths(table, options):
        problem = _protected_problem(path, policy)
        if problem is None and _names_inside(path, policy.model_dirs):
            problem = _outside_problem(path, policy.model_dirs)
        if problem is not None:
            return f"options.{spec.name}: {problem}"
    return None


def with_instance_folders(table: OptionTable, options: Mapping[str, OptionValue],
                          policy: FilePolicy, instance: str) -> dict[str, OptionValue]:
    """The options with each left-out per-instance folder filled in (and made, private)."""
    launched = dict(options)
    for spec in table.options:
        folder = policy.instance_folder(instance, spec.name)
        if spec.instance_folder and spec.name not in launched and folder is not None:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            launched[spec.name] = str(folder)
    return launched


def _named_paths(table: OptionTable, options: Mapping[str, OptionValue]
                 ) -> Iterator[tuple[OptionSpec, str]]:
    for spec in table.path_options:
        value = options.get(spec.name)
        values = value if isinstance(value, list) else [value] if isinstance(value, str) else []
        for item in values:
            if spec.names_path == "files":
                yield from ((spec, part) for part in item.split(",") if part)
            elif spec.names_path != "file_or_text" or _opened_as_file(item):
                yield spec, item


def _opened_as_file(value: str) -> bool:
    return not any(c in value for c in _TEMPLATE_CHARACTERS) or os.path.lexists(value)


def _resolved(path: str) -> Path:
    # As the backend opens it: relative to the working directory it inherits from llamactl.
    return Path(os.path.abspath(path)).resolve()


def _protected_problem(path: str, policy: FilePolicy) -> str | None:
    resolved = _resolved(path)
    for place, what in policy.protected():
        if resolved == place or resolved.is_relative_to(place):
            return f"'{path}' resolves into {what}"
    folder = policy.config_folder()
    if folder is not None and resolved.is_relative_to(folder):
        # A model folder the admin keeps beside the config file stays usable.
        nested = [d.resolve() for d in policy.model_dirs]
        if not any(d != folder and d.is_relative_to(folder) and resolved.is_relative_to(d)
                   for d in nested):
            return f"'{path}' resolves into the config file's folder"
    return None


def _outside_problem(path: str, model_dirs: Sequence[Path]) -> str | None:
    if not model_dirs:
        return "only an admin may name a file or folder while instances.model_dirs is empty"
    if not os.path.isabs(path):
        return f"must be an absolute path, not '{path}'"
    resolved = _resolved(path)
    inside = any(resolved.is_relative_to(d.resolve()) for d in model_dirs)
    if not (inside and _names_inside(path, model_dirs)):
        allowed = ", ".join(str(d) for d in model_dirs)
        return f"'{path}' is outside instances.model_dirs ({allowed})"
    return None


def _names_inside(path: str, model_dirs: Sequence[Path]) -> bool:
    """Whether the path, as written (``..`` folded, no symlink followed), is in a model dir."""
    if not os.path.isabs(path):
        return False
    named = Path(os.path.normpath(path))
    return any(named.is_relative_to(os.path.normpath(d)) or named.is_relative_to(d.resolve())
               for d in model_dirs)


def _refused(spec: OptionSpec, problem: str) -> ValidationFailed:
    return ValidationFailed(f"option '{spec.name}' names a path it may not use",
                            f"options.{spec.name}: {problem}")
