"""Cache invalidation notices: what a committed change tells every process's key cache.

A notice is ``<org>/<kind>:<id>``, kind being ``key``, ``app``, ``profile`` or ``org``: the
same four ways ``KeyCache`` forgets records, and the organization whose records they are (so
the event stream, services/events.py, tells each organization only of its own changes). The
organization comes first on purpose: a node of an older version reads ``org_1/key`` as an
unknown kind and drops its whole cache, where an organization after the id would make it
forget nothing. A notice recorded without its organization (``<kind>:<id>``) still works on
every cache; the event stream then tells every subscriber to drop everything instead.

``signing:keys`` (no organization: the signing keys are the instance's) is a rotation of the
token signing keys, which the process's Keyring reloads (``signing``: its ``invalidate``); a
node of an older version reads it as unknown and drops its cache, harmlessly.

Short text, because on PostgreSQL it travels as a NOTIFY payload (at most 8000 bytes) and
the same words are what a reader of the server's log sees. A notice this version does not
understand (from a newer node during an upgrade) drops the whole cache: forgetting too much
costs cold loads, forgetting too little serves a revoked key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Final, Literal

from keyplane.domain.ports import KeyCache

Kind = Literal["key", "app", "profile", "org", "signing"]
# The kinds that name key cache records (``signing`` names the signing keys instead).
KINDS: Final = ("key", "app", "profile", "org")


def notice(kind: Kind, ident: str, org_id: str | None = None) -> str:
    return f"{kind}:{ident}" if org_id is None else f"{org_id}/{kind}:{ident}"


def parsed(text: str) -> tuple[str | None, str, str]:
    """(organization or None, kind, id) of a notice; kind and id are whatever the text
    holds, checked by ``apply`` (an organization id never holds ``/`` or ``:``)."""
    head, slash, rest = text.partition("/")
    org_id: str | None = None
    if slash and ":" not in head:
        org_id, text = head, rest
    kind, _, ident = text.partition(":")
    return org_id, kind, ident


def stamped(text: str, sent_at: float) -> str:
    """The notice as it travels between processes: ``<sent_at> <kind>:<id>``, the send
    time in Unix seconds first, so the receiver can measure the delay (a metric). Before
    the first colon on purpose: a node of an older version reads the stamp as an unknown
    kind and drops its whole cache, where a stamp after the id would make it forget
    nothing (an id that matches no record)."""
    return f"{sent_at:.6f} {text}"


def unstamped(payload: str) -> tuple[str, float | None]:
    """The notice and its send time (None: an unstamped notice, from an older node)."""
    head, space, text = payload.partition(" ")
    if space and ":" not in head:
        try:
            sent_at = float(head)
        except ValueError:
            return payload, None
        if math.isfinite(sent_at):
            return text, sent_at
    return payload, None


def apply(cache: KeyCache, text: str, signing: Callable[[], None] | None = None) -> None:
    """Forget what ``text`` names; everything, when it names nothing this version knows.
    ``signing``: what reloads the signing keys."""
    _, kind, ident = parsed(text)
    if kind == "signing":
        if signing is not None:
            signing()
    elif not ident:
        cache.clear()
    elif kind == "key":
        cache.invalidate_key(ident)
    elif kind == "app":
        cache.invalidate_app(ident)
    elif kind == "profile":
        cache.invalidate_profile(ident)
    elif kind == "org":
        cache.invalidate_org(ident)
    else:
        cache.clear()
        if signing is not None:
            signing()


def apply_all(
    cache: KeyCache, notices: Iterable[str], signing: Callable[[], None] | None = None
) -> None:
    for text in notices:
        apply(cache, text, signing)
