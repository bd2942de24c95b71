"""Request and response bodies: OAuth client credentials (RFC 6749 4.4) and the JWKS."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from keyplane.domain.oauth import ErrorCode


class TokenRequestForm(BaseModel):
    """The form-encoded token request (``application/x-www-form-urlencoded``)."""

    grant_type: Literal["client_credentials"] = Field(description="Always client_credentials.")
    scope: str | None = Field(
        default=None,
        description="Space-separated scopes, a subset of the key's: the token gets only "
        "these. Default: the key's effective scopes.",
    )
    client_id: str | None = Field(
        default=None,
        description="The key id (`key_…`), when not sent with HTTP Basic (not both).",
    )
    client_secret: str | None = Field(
        default=None, description="The full key, when not sent with HTTP Basic (not both)."
    )


class TokenResponse(BaseModel):
    access_token: str = Field(description="A signed JWT (EdDSA); send it as `Bearer`.")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until it expires (at most 3600).")
    scope: str = Field(description="Space-separated scopes the token carries.")


class OAuthErrorResponse(BaseModel):
    """RFC 6749 5.2: what OAuth clients parse (not a problem document)."""

    error: ErrorCode
    error_description: str | None = None


class Jwk(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class Jwks(BaseModel):
    keys: list[Jwk]
