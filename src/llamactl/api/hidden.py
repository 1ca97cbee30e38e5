"""Secrets in an instance's settings, as callers below admin see them (issue 27).

An admin puts an ``HF_TOKEN`` in an instance's ``environment``, or ``--hf-token ...`` in its
``extra_args``; every viewer could read them back. Below admin, each ``environment`` value and
the value of each secret-looking flag of ``extra_args`` reads as ``"***"`` (the names stay, so
the dashboard still shows what is set). An update that sends such a ``"***"`` back means "keep
the value there", as ``PUT /api/config`` does with its secrets, so an edit form can send what
it read without wiping or leaking anything; a ``"***"`` that stands for nothing is refused.
"""

from __future__ import annotations

import re

from llamactl.errors import ValidationFailed

HIDDEN = "***"
# A flag whose value is a credential: --hf-token, --api-key, --secret, --password...
_SECRET_FLAG = re.compile(r"^--?[\w-]*(token|key|secret|password|passwd)[\w-]*$", re.I)


def hidden_environment(environment: dict[str, str]) -> dict[str, str]:
    return dict.fromkeys(environment, HIDDEN)


def hidden_args(args: list[str]) -> list[str]:
    """``extra_args`` with each secret flag's value (``--flag value`` or ``--flag=value``)
    replaced by ``"***"``."""
    shown: list[str] = []
    for index, arg in enumerate(args):
        flag, equals, _value = arg.partition("=")
        if equals and _SECRET_FLAG.match(flag):
            shown.append(f"{flag}={HIDDEN}")
        elif index > 0 and _SECRET_FLAG.match(args[index - 1]) and "=" not in args[index - 1]:
            shown.append(HIDDEN)
        else:
            shown.append(arg)
    return shown


def kept_environment(given: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    """``given`` with each ``"***"`` replaced by the value the variable has now."""
    kept = dict(given)
    for name, value in given.items():
        if value == HIDDEN:
            if name not in current:
                raise ValidationFailed(f"environment.{name} is '***' but has no value to keep",
                                       f"environment.{name}: '***' stands for no value")
            kept[name] = current[name]
    return kept


def kept_args(given: list[str], current: list[str]) -> list[str]:
    """``given`` with each ``"***"`` (as ``hidden_args`` shows it) put back from the argument
    at the same place now."""
    shown = hidden_args(current)
    kept = list(given)
    for index, arg in enumerate(given):
        if HIDDEN in arg:
            if index >= len(current) or shown[index] != arg:
                raise ValidationFailed(f"extra_args[{index}] is '***' but has no value to keep",
                                       f"extra_args.{index}: '***' stands for no value")
            kept[index] = current[index]
    return kept
