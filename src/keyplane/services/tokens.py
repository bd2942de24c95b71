"""Short-lived access tokens for a key: issued by the client credentials grant, read back
wherever a key is accepted.

Issuing authenticates the key exactly as an API call with it would (services/verifying.py
``principal_of``): its status and expiry, its IP allowlist, and its rate limits and quota,
one unit per token. A token request is a use of the key: counting it keeps last-used times
and usage honest, and spares keyplane a signing endpoint that anyone holding a key could
hammer past the limits that key was given. The token's own calls are uses too, each spent
like a call with the key.

Reading a token back checks the signature and ``exp`` (jose.py), then loads the key that
``sub`` names through the key cache, so a disabled, deleted or expired key's tokens stop
at the same moment as the key on every node (its invalidation notice drops the record).
What a token may do is its own scopes narrowed by the key's current ones.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from keyplane.domain.errors import IpForbidden, LimitExceeded, Unauthenticated
from keyplane.domain.oauth import (
    OAuthError,
    TokenRequest,
    check_client_id,
    granted,
    lifetime,
    scope_text,
)
from keyplane.domain.ports import Clock, Keyring
from keyplane.domain.ratelimits import Admission
from keyplane.domain.scopes import InvalidScope, ScopeSet
from keyplane.domain.verification import CachedKey
from keyplane.services.verifying import NEEDS_LOAD, NeedsLoad, Verifier

_REFUSED = "The client credentials are not valid."


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    # The key's limits after this request was admitted (RateLimit headers); None: no limits.
    limits: Admission | None


class TokenService:
    def __init__(
        self, verifier: Verifier, keyring: Keyring, clock: Clock, *, lifetime: timedelta
    ) -> None:
        self._verifier = verifier
        self._keyring = keyring
        self._clock = clock
        self._lifetime = lifetime

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def issue(self, request: TokenRequest, ip: str | None = None) -> IssuedToken:
        """A token for the key authenticated by ``request``, or OAuthError (RFC 6749 5.2).

        Reads the store on a cold cache: call it from a thread, never an event loop."""
        check_client_id(request.client_id)
        entry = self._verifier.load(request.client_secret)
        # The secret must be the key the client id names (both public-looking, compared
        # in constant time all the same).
        if entry is None or not hmac.compare_digest(entry.key_id, request.client_id):
            self._verifier.metrics.authenticated("NOT_FOUND")
            raise OAuthError("invalid_client", _REFUSED)
        # Scopes before limits: an impossible request spends nothing. Only for a key that
        # is valid, so a disabled key's request hears invalid_client, not about its scopes.
        scopes = granted(request.scope, entry.scopes) if self._usable(entry) else entry.scopes
        try:
            principal = self._verifier.principal_of(entry, ip)
        except Unauthenticated:
            raise OAuthError("invalid_client", _REFUSED) from None
        except IpForbidden:
            raise OAuthError(
                "unauthorized_client", "This key may not be used from this address."
            ) from None
        except LimitExceeded as exc:
            raise OAuthError("rate_limited", str(exc), retry_after=exc.retry_after) from None
        now = self._clock()
        expires_in = lifetime(now, self._lifetime, entry.expires_at)
        if expires_in < 1:
            raise OAuthError("invalid_client", _REFUSED)
        issued_at = int(now.timestamp())
        claims = {
            "sub": entry.key_id,
            "org": entry.org_id,
            "app": entry.app_id,
            "scope": scope_text(scopes),
            "profile": entry.profile_id,
            "iat": issued_at,
            "exp": issued_at + expires_in,
            "jti": secrets.token_urlsafe(16),
        }
        token = self._keyring.sign(claims)
        return IssuedToken(token, expires_in, scope_text(scopes), principal.limits)

    def _usable(self, entry: CachedKey) -> bool:
        return entry.code_at(self._clock()) == "VALID"

    def resolve(self, token: str, *, load: bool = True) -> CachedKey | NeedsLoad | None:
        """The key behind a token this instance signed, its scopes narrowed to the token's;
        None when the token is not (or no longer) good. With ``load=False`` anything that
        would read the store answers NEEDS_LOAD instead (an event loop's warm path)."""
        if self._keyring.needs_load():
            if not load:
                return NEEDS_LOAD
            self._keyring.load()
        claims = self._keyring.read(token)
        if claims is None:
            return None
        key_id, org_id, scope = claims.get("sub"), claims.get("org"), claims.get("scope")
        if not (isinstance(key_id, str) and isinstance(org_id, str) and isinstance(scope, str)):
            return None
        entry = self._verifier.lookup_id(org_id, key_id, load=load)
        if not isinstance(entry, CachedKey):
            return entry
        try:
            scopes = ScopeSet.of(scope.split()) if scope else ScopeSet.of(())
        except InvalidScope:
            return None
        return replace(entry, scopes=entry.scopes.intersect(scopes))

    def load(self, token: str) -> CachedKey | None:
        """``resolve`` that reads the store when it must (from a thread)."""
        entry = self.resolve(token)
        assert not isinstance(entry, NeedsLoad)  # noqa: S101 - load=True never answers it
        return entry
