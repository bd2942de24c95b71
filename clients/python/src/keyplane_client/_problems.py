"""The guard's refusals: RFC 9457 problem documents, the same types keyplane's own API
answers with, as status, headers and body ready for any ASGI server."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Final

from keyplane_client._models import Verdict
from keyplane_client._verified import ratelimit_headers

PROBLEM_JSON: Final = "application/problem+json"
TYPE_BASE: Final = "urn:keyplane:problem:"
WWW_AUTHENTICATE: Final = (b"www-authenticate", b'Bearer realm="api"')


@dataclass
class Problem(Exception):
    """A request the guard refuses, and the answer it gets."""

    status: int
    slug: str
    title: str
    detail: str
    code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def body(self) -> bytes:
        document: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.code is not None:
            document["code"] = self.code
        document.update(self.extra)
        return json.dumps(document, separators=(",", ":")).encode()

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        body = self.body()
        return [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            *self.headers,
        ]


def unauthenticated(detail: str, code: str | None = None) -> Problem:
    return Problem(
        401,
        "unauthenticated",
        "Authentication required",
        detail,
        code,
        headers=(WWW_AUTHENTICATE,),
    )


_REFUSED: Final = {
    "NOT_FOUND": "The API key is missing, malformed or unknown.",
    "EXPIRED": "The API key has expired.",
    "DISABLED": "The API key is disabled.",
}


def refusal(verdict: Verdict) -> Problem:
    """The answer to a request whose key keyplane refused."""
    code = verdict.code
    limits = ratelimit_headers(tuple(verdict.ratelimits))
    if code in _REFUSED:
        return unauthenticated(_REFUSED[code], code)
    if code == "INSUFFICIENT_SCOPE":
        missing = list(verdict.missing_scopes)
        return Problem(
            403,
            "missing-scope",
            "Missing scope",
            f"The API key lacks {', '.join(missing) or 'a required scope'}.",
            code,
            {"missing_scopes": missing},
        )
    if code == "IP_FORBIDDEN":
        return Problem(
            403,
            "ip-forbidden",
            "Address not allowed",
            "The API key is not allowed from here.",
            code,
        )
    if code == "RATE_LIMITED":
        waits = [s.reset_seconds for s in verdict.ratelimits if s.remaining <= 0]
        retry = max(1, math.ceil(min(waits))) if waits else 1
        return Problem(
            429,
            "rate-limited",
            "Too many requests",
            "The API key is over one of its rate limits.",
            code,
            headers=((b"retry-after", str(retry).encode()), *limits),
        )
    if code == "USAGE_EXCEEDED":
        return Problem(
            429,
            "usage-exceeded",
            "Quota used up",
            "The API key has used up its quota.",
            code,
            headers=tuple(limits),
        )
    # A code this version does not know: refused all the same.
    return unauthenticated("The API key was refused.", code)


def unavailable(detail: str) -> Problem:
    """keyplane could not be asked: fail closed, and say when to try again."""
    return Problem(
        503,
        "unavailable",
        "Service unavailable",
        detail,
        headers=((b"retry-after", b"1"),),
    )
