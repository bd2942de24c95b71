"""Prefixed, time-sortable ids (ULID): ``key_01J…``, ``app_01J…``, ``org_01J…``, ``usr_01J…``."""

from __future__ import annotations

from typing import Final, Literal

from ulid import ULID

Kind = Literal[
    "key", "app", "org", "usr", "prf", "res", "evt", "ses", "idn", "ntc", "whk", "msg", "dlv", "pst"
]
KINDS: Final = (
    "key",
    "app",
    "org",
    "usr",
    "prf",
    "res",
    "evt",
    "ses",
    "idn",
    "ntc",
    "whk",
    "msg",
    "dlv",
    "pst",
)


def new_id(kind: Kind) -> str:
    return f"{kind}_{str(ULID()).lower()}"


def has_kind(ident: str, kind: Kind) -> bool:
    return ident.startswith(kind + "_") and len(ident) == len(kind) + 27
