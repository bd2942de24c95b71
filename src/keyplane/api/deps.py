"""Dependencies routes declare: the services, and the authenticated caller with a scope."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keyplane.container import Keyplane
from keyplane.domain.oauth import looks_like_token
from keyplane.services.common import Principal

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="A keyplane API key, `Authorization: Bearer kp_live_…`, or an access token "
    "from `POST /oauth/token` (`Bearer eyJ…`), which acts as its key narrowed to its scopes.",
)


def get_keyplane(request: Request) -> Keyplane:
    kp: Keyplane = request.app.state.keyplane
    return kp


Services = Annotated[Keyplane, Depends(get_keyplane)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def no_store(response: Response) -> None:
    """For every response that carries a secret (a full key, a set-password link): no
    browser, proxy or client cache may keep a copy (RFC 9111 5.2.2.5; Pragma for HTTP/1.0)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


# Where ``authenticated`` leaves the calling key's limits for RateLimitHeaders to send.
LIMITS_SCOPE_KEY = "keyplane.limits"


def authenticated(kp: Services, credentials: Credentials, request: Request) -> Principal:
    """The calling key, admitted by its own IP allowlist, rate limits and quota (the client
    address is the connection's, or X-Forwarded-For's as TrustedProxies resolved it)."""
    client = request.client.host if request.client else None
    presented = credentials.credentials if credentials else None
    if presented is not None and looks_like_token(presented):
        # An access token: its key, narrowed to the token's scopes (services/tokens.py).
        principal = kp.verifier.principal_of(kp.tokens.load(presented), client)
    else:
        principal = kp.verifier.authenticate(presented, client)
    if principal.limits is not None:
        request.scope[LIMITS_SCOPE_KEY] = principal.limits
    return from_request(principal, request)


def from_request(principal: Principal, request: Request) -> Principal:
    """The caller with the request's client address (as the proxy middleware resolved it)
    and user agent, for the audit events it causes: the one seam where HTTP reaches them."""
    agent = request.headers.get("user-agent")
    return replace(
        principal,
        client_ip=request.client.host[:64] if request.client else None,
        user_agent=agent[:512] if agent else None,
    )


class Require:
    """``Depends(Require("api_keys:write"))``: the caller, holding that scope."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def __call__(self, principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        principal.require(self.scope)
        return principal


def _holding(scope: str) -> object:
    return Depends(Require(scope))


# A caller whose authority is the key itself, not a scope (policy.KEY_ITSELF).
Authenticated = Annotated[Principal, Depends(authenticated)]
# One alias per scope a route needs; the route's signature then states its contract.
KeysRead = Annotated[Principal, _holding("api_keys:read")]
KeysWrite = Annotated[Principal, _holding("api_keys:write")]
KeysDelete = Annotated[Principal, _holding("api_keys:delete")]
AppsRead = Annotated[Principal, _holding("apps:read")]
AppsWrite = Annotated[Principal, _holding("apps:write")]
AppsDelete = Annotated[Principal, _holding("apps:delete")]
ProfilesRead = Annotated[Principal, _holding("profiles:read")]
ProfilesWrite = Annotated[Principal, _holding("profiles:write")]
ProfilesDelete = Annotated[Principal, _holding("profiles:delete")]
ResourcesRead = Annotated[Principal, _holding("resources:read")]
ResourcesWrite = Annotated[Principal, _holding("resources:write")]
ResourcesDelete = Annotated[Principal, _holding("resources:delete")]
OrgRead = Annotated[Principal, _holding("org:read")]
AuditRead = Annotated[Principal, _holding("audit:read")]
OrgWrite = Annotated[Principal, _holding("org:write")]
UsersRead = Annotated[Principal, _holding("users:read")]
UsersWrite = Annotated[Principal, _holding("users:write")]
UsersDelete = Annotated[Principal, _holding("users:delete")]
AnalyticsRead = Annotated[Principal, _holding("analytics:read")]
WebhooksRead = Annotated[Principal, _holding("webhooks:read")]
WebhooksWrite = Annotated[Principal, _holding("webhooks:write")]
WebhooksDelete = Annotated[Principal, _holding("webhooks:delete")]
KeysVerify = Annotated[Principal, _holding("keys:verify")]
