"""POST /oauth/token (client credentials, RFC 6749 4.4) and GET /.well-known/jwks.json.

The token endpoint answers RFC 6749 5.2 JSON errors, not problem documents: OAuth client
libraries read ``error`` and nothing else. Its body is form-encoded, parsed here by hand
(the grant's rules live in domain/oauth.py); issuing reads the store on a cold cache and
signs, so it runs in the threadpool.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from keyplane.api.errors import ratelimit_headers
from keyplane.api.routes._docs import problems
from keyplane.api.schemas.oauth import (
    Jwks,
    OAuthErrorResponse,
    TokenRequestForm,
    TokenResponse,
)
from keyplane.container import Keyplane
from keyplane.domain.oauth import OAuthError, parse_token_request

router = APIRouter(tags=["oauth"])

_FORM: Final = "application/x-www-form-urlencoded"
_JSON: Final = "application/json"
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Public keys change only by a rotation, and the previous key stays published for an hour
# after one: a minute of caching never hides a key a live token needs for long.
JWKS_MAX_AGE: Final = 60
_STATUS: Final = {"invalid_client": 401, "rate_limited": 429}


def _error_doc(description: str) -> dict[str, Any]:
    schema = OAuthErrorResponse.model_json_schema()
    return {"description": description, "content": {_JSON: {"schema": schema}}}


@router.post(
    "/oauth/token",
    summary="Get an access token (client credentials)",
    response_class=Response,
    responses={
        200: {"model": TokenResponse, "description": "A short-lived access token."},
        400: _error_doc(
            "`invalid_request` (a missing or repeated parameter, both client authentication "
            "methods, a body that is not form-encoded), `unsupported_grant_type` (anything "
            "but client_credentials), `invalid_scope` (a malformed scope or more than the "
            "key holds), `unauthorized_client` (the key's IP allowlist refuses this "
            "address), `invalid_grant` (reserved: the client credentials grant has no "
            "grant to be invalid). A key in the URL answers a problem document."
        ),
        401: _error_doc(
            "`invalid_client`: no client authentication, a wrong secret, or an unknown, "
            "disabled or expired key (`WWW-Authenticate: Basic`)."
        ),
        429: _error_doc(
            "`rate_limited`: the key is over a rate limit or out of quota (a token request "
            "counts as one use of the key); `Retry-After` says when to retry."
        ),
        # The store unreachable: a problem document, as for every operation.
        503: problems()[503],
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {_FORM: {"schema": TokenRequestForm.model_json_schema()}},
        },
    },
)
async def token(request: Request) -> Response:
    """Exchange a key for a short-lived access token (RFC 6749 4.4).

    Authenticate the client with HTTP Basic, the key id (`key_…`) as the user name and the
    full key as the password, or with the form fields `client_id` and `client_secret` (not
    both). An optional `scope` (space-separated) narrows the token to a subset of the key's
    scopes. The token is a JWT signed with EdDSA (its public keys at
    `/.well-known/jwks.json`), valid for at most an hour and never past the key's expiry;
    keyplane accepts it as `Bearer` wherever it accepts the key, until it expires or the
    key is disabled, deleted or expires. A token request is one use of the key (its rate
    limits, quota, IP allowlist and last-used time apply).
    """
    kp: Keyplane = request.app.state.keyplane
    client = request.client.host if request.client else None
    try:
        pairs = _form(request.headers.get("content-type", ""), await request.body())
        asked = parse_token_request(pairs, request.headers.get("authorization"))
        issued = await run_in_threadpool(kp.tokens.issue, asked, client)
    except OAuthError as exc:
        return oauth_error(exc)
    body = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    headers = dict(_NO_STORE)
    if issued.limits is not None:
        headers.update(ratelimit_headers(issued.limits))
    return Response(orjson.dumps(body), media_type=_JSON, headers=headers)


def _form(content_type: str, body: bytes) -> list[tuple[str, str]]:
    if content_type.split(";", maxsplit=1)[0].strip().lower() != _FORM:
        raise OAuthError("invalid_request", f"Send the parameters as {_FORM}.")
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=20)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "The body is not UTF-8.") from None
    except ValueError:  # more fields than any token request has
        raise OAuthError("invalid_request", "Too many parameters.") from None


def oauth_error(exc: OAuthError) -> Response:
    status = _STATUS.get(exc.error, 400)
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="keyplane", charset="UTF-8"'
    if exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
    body = {"error": exc.error, "error_description": exc.description}
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON, headers=headers)


@router.get(
    "/.well-known/jwks.json",
    summary="The token signing keys (JWKS)",
    response_class=Response,
    responses={200: {"model": Jwks, "description": "The current and previous public keys."}},
)
async def jwks(request: Request) -> Response:
    """The public keys that verify keyplane's access tokens (RFC 7517): the current signing
    key and the previous ones, which verify tokens issued before a rotation. Public."""
    kp: Keyplane = request.app.state.keyplane
    keyring = kp.tokens.keyring
    if keyring.needs_load():
        await run_in_threadpool(keyring.load)
    return Response(
        orjson.dumps(keyring.jwks()),
        media_type=_JSON,
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
    )
