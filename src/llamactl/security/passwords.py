"""Passwords are stored only as argon2id hashes (salted, slow on purpose).

The hasher and the dummy hash are made on first use: hashing costs ~0.1 s on purpose, and
every ``llamactl`` call that imports this module (``--help`` included) used to pay it.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that "no such user" and "wrong
    password" take the same time and cannot be told apart."""
    return _hasher().hash("llamactl-dummy-password")


def warm_up() -> None:
    """Make the dummy hash now (a server with auth on, at start), so that the first login of
    an unknown user does not take longer than the next ones."""
    _dummy_hash()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return (_hasher().verify(password_hash or _dummy_hash(), password)
                and password_hash is not None)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def is_password_hash(value: str) -> bool:
    return value.startswith("$argon2") or value.startswith(("$2a$", "$2b$", "$2y$"))
