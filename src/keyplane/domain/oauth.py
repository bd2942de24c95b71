"""OAuth 2.0 client credentials (RFC 6749 4.4): the token request's rules and the token's claims.

A key id (``key_…``) is the client id and the full key the client secret (DESIGN.md). The
token endpoint answers errors as RFC 6749 5.2 JSON, not problem documents: OAuth clients
parse ``error``, and nothing else. ``OAuthError`` carries that code; the web layer turns it
into the response (api/routes/oauth.py), the one place that knows its status.

An access token is a JWT (RFC 7519) signed by the instance's current signing key. Keyplane
reads its own tokens back (api/deps.py, the verify route) by the signature, then by the key
named in ``sub`` through the key cache, so a token never outlives its key's revocation by
more than a cache invalidation.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal
from urllib.parse import unquote_plus

from keyplane.domain.ids import has_kind
from keyplane.domain.scopes import InvalidScope, ScopeSet, parse_scope

GRANT_TYPE: Final = "client_credentials"
TOKEN_LIFETIME_MAX: Final = timedelta(hours=1)

ErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "rate_limited",
]

# A compact JWS: three base64url parts, the header a JSON object ("eyJ" is '{"'). Cheap to
# test before anything else, so a real key never pays for it.
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{20,}")
TOKEN_MAX_LENGTH: Final = 4096


class OAuthError(Exception):
    """A refused token request, as RFC 6749 5.2 names it. ``description`` is for people and
    never holds the secret or says whether a client id exists."""

    def __init__(self, error: ErrorCode, description: str, *, retry_after: int = 0) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.retry_after = retry_after


def looks_like_token(presented: str) -> bool:
    """Whether ``presented`` has the shape of a keyplane access token (a compact JWS)."""
    return (
        presented.startswith("eyJ")
        and presented.count(".") == 2
        and len(presented) <= TOKEN_MAX_LENGTH
        and _JWT.fullmatch(presented) is not None
    )


def contains_token(text: str) -> bool:
    """Whether a URL holds something shaped like an access token (refused: URLs are logged)."""
    return "eyJ" in text and _JWT.search(text) is not None


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A client credentials token request, its client authenticated by one method only."""

    client_id: str
    client_secret: str
    scope: tuple[str, ...] | None  # None: not asked, the key's own effective scopes


def parse_token_request(
    pairs: Sequence[tuple[str, str]], authorization: str | None
) -> TokenRequest:
    """The request's fields from its form body and Authorization header, or OAuthError."""
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # RFC 6749 3.2: "parameters MUST NOT be included more than once"
            raise OAuthError("invalid_request", f"The parameter {name!r} is repeated.")
        if value != "":  # 3.2: a parameter sent without a value is treated as omitted
            form[name] = value
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise OAuthError("invalid_request", "The grant_type parameter is required.")
    if grant_type != GRANT_TYPE:
        raise OAuthError(
            "unsupported_grant_type", "Only the client_credentials grant type is supported."
        )
    basic = _basic(authorization)
    in_form = "client_id" in form or "client_secret" in form
    if basic is not None and in_form:
        raise OAuthError(
            "invalid_request",
            "Authenticate the client with one method only: HTTP Basic or the form fields.",
        )
    if basic is not None:
        client_id, client_secret = basic
    elif "client_id" in form and "client_secret" in form:
        client_id, client_secret = form["client_id"], form["client_secret"]
    else:
        raise OAuthError(
            "invalid_client",
            "Client authentication is required: HTTP Basic with the key id and the key.",
        )
    return TokenRequest(client_id, client_secret, _scope(form.get("scope")))


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """``client_id:client_secret`` from HTTP Basic (RFC 6749 2.3.1: each form-encoded)."""
    if authorization is None:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", "Use HTTP Basic to authenticate the client.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "The Basic credentials are malformed.") from None
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        raise OAuthError("invalid_client", "The Basic credentials are malformed.")
    return unquote_plus(client_id), unquote_plus(client_secret)


def _scope(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    scopes = tuple(dict.fromkeys(value.split(" ")))
    for scope in scopes:
        try:
            parse_scope(scope)
        except InvalidScope:
            raise OAuthError("invalid_scope", f"{scope[:80]!r} is not a scope.") from None
    return scopes


def check_client_id(client_id: str) -> None:
    if not has_kind(client_id, "key"):
        raise OAuthError("invalid_client", "The client credentials are not valid.")


def granted(requested: Iterable[str] | None, held: ScopeSet) -> ScopeSet:
    """The token's scopes: what was asked, when the key holds all of it; else invalid_scope."""
    if requested is None:
        return held
    asked = ScopeSet.of(requested)
    if not asked.issubset(held):
        raise OAuthError("invalid_scope", "The requested scope exceeds the key's scopes.")
    return asked


def lifetime(now: datetime, configured: timedelta, key_expires_at: datetime | None) -> int:
    """Seconds the token lives: the setting (at most an hour), never past the key's expiry."""
    seconds = int(min(configured, TOKEN_LIFETIME_MAX).total_seconds())
    if key_expires_at is not None:
        seconds = min(seconds, int((key_expires_at - now).total_seconds()))
    return seconds


def scope_text(scopes: ScopeSet) -> str:
    """The ``scope`` of a token answer and claim: space-separated (RFC 6749 3.3)."""
    return " ".join(scopes.sorted())


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What keyplane reads back from one of its verified tokens."""

    key_id: str
    org_id: str
    scopes: ScopeSet


SigningKeyState = Literal["current", "previous", "retired"]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One token signing key. ``sealed_private``: the private key encrypted under the server
    secret (jose.py), never the key itself; ``public_jwk``: its public half as a JWK."""

    kid: str
    algorithm: str
    sealed_private: str = field(repr=False)
    public_jwk: Mapping[str, str]
    state: SigningKeyState
    created_at: datetime
    rotated_at: datetime | None = None
