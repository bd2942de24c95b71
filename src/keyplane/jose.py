"""Token signing keys in this process: sealed at rest, signing and verifying JWTs (PyJWT).

Ed25519 (JWS ``EdDSA``, RFC 8037): small keys and signatures, deterministic signing, one
curve with no parameter choices to get wrong. A token costs one signature (~50 µs) to issue
and one verification to read.

At rest a private key is sealed with AES-256-GCM under a key derived from the server
secret (the pepper, settings.py) by HKDF-SHA256 with its own purpose label, so the key that
seals signing keys is not the one that hashes API keys, and a stolen database holds no
usable private key. The kid is the GCM associated data: a sealed key moved to another row
does not open.

The keyring keeps the public keys of the current and previous signing keys and the current
private key, loaded from the store; a rotation's invalidation notice (or a lost listener)
marks it stale, and the next use reloads it (in a thread: ``needs_load`` tells an event
loop to hand the load over). After ``ttl`` it reloads as a last safety net, like the key
cache.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
)
from ulid import ULID

from keyplane.domain.oauth import SigningKey
from keyplane.domain.ports import Clock, Store

ALGORITHM: Final = "EdDSA"
_SEAL_LABEL: Final = b"keyplane token signing keys v1"
_SEAL_VERSION: Final = "v1."
# The claims every keyplane token carries; a token without one of them is not ours.
_REQUIRED: Final = ("iss", "sub", "org", "scope", "iat", "exp", "jti")


class Sealer:
    """AES-256-GCM under a key derived from the server secret for this purpose only."""

    def __init__(self, secret: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_LABEL).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, associated: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext, associated.encode())
        return _SEAL_VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, associated: str) -> bytes:
        """The plaintext; InvalidTag (cryptography) for another secret or another kid."""
        if not sealed.startswith(_SEAL_VERSION):
            raise ValueError("not a sealed signing key of a known version")
        raw = base64.urlsafe_b64decode(sealed[len(_SEAL_VERSION) :])
        return self._aead.decrypt(raw[:12], raw[12:], associated.encode())


def new_kid() -> str:
    return f"sig_{str(ULID()).lower()}"


def _public_jwk(kid: str, public: Ed25519PublicKey) -> dict[str, str]:
    jwk: dict[str, str] = jwt.algorithms.OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


class _Loaded:
    """One load's keys: the current signer and every verifier by kid."""

    def __init__(self, sealer: Sealer, keys: list[SigningKey], stale_at: datetime) -> None:
        self.stale_at = stale_at
        self.verifiers: dict[str, Any] = {}
        self.jwks: list[dict[str, str]] = []
        self.current: tuple[str, Ed25519PrivateKey] | None = None
        for key in keys:
            if key.algorithm != ALGORITHM:
                continue
            self.verifiers[key.kid] = jwt.algorithms.OKPAlgorithm.from_jwk(dict(key.public_jwk))
            self.jwks.append(dict(key.public_jwk))
            if key.state == "current":
                private = load_der_private_key(sealer.open(key.sealed_private, key.kid), None)
                if not isinstance(private, Ed25519PrivateKey):
                    raise TypeError("a signing key that is not Ed25519")
                self.current = (key.kid, private)


class SqlKeyring:
    """The Keyring port (domain/ports.py) over the store's signing_keys."""

    def __init__(
        self,
        store: Store,
        sealer: Sealer,
        clock: Clock,
        *,
        issuer: str,
        ttl: timedelta = timedelta(seconds=30),
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._clock = clock
        self._issuer = issuer
        self._ttl = ttl
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def needs_load(self) -> bool:
        loaded = self._loaded
        return loaded is None or self._clock() >= loaded.stale_at

    def load(self) -> None:
        with self._lock:  # one reload at a time; the others wait for it, then use it
            if not self.needs_load():
                return
            stale_at = self._clock() + self._ttl
            with self._store.read() as tx:
                keys = tx.signing_keys.live()
            self._loaded = _Loaded(self._sealer, keys, stale_at)

    def invalidate(self) -> None:
        self._loaded = None

    def _keys(self) -> _Loaded:
        loaded = self._loaded
        if loaded is None or self._clock() >= loaded.stale_at:
            self.load()
            loaded = self._loaded
        assert loaded is not None  # noqa: S101 - load() sets it or raises
        return loaded

    def new_key(self, now: datetime) -> SigningKey:
        kid = new_kid()
        private = Ed25519PrivateKey.generate()
        der = private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        return SigningKey(
            kid=kid,
            algorithm=ALGORITHM,
            sealed_private=self._sealer.seal(der, kid),
            public_jwk=_public_jwk(kid, private.public_key()),
            state="current",
            created_at=now,
        )

    def sign(self, claims: Mapping[str, object]) -> str:
        current = self._keys().current
        if current is None:
            raise RuntimeError("no current signing key: `keyplane signing-keys rotate` makes one")
        kid, private = current
        return jwt.encode(
            {"iss": self._issuer, **claims}, private, algorithm=ALGORITHM, headers={"kid": kid}
        )

    def read(self, token: str) -> Mapping[str, object] | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            return None
        public = self._keys().verifiers.get(kid)
        if public is None:
            return None
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                # exp is checked here against the injected clock (the one that stamped it),
                # with no leeway: a token is short-lived anyway.
                options={"require": list(_REQUIRED), "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            return None
        exp = claims["exp"]
        if not isinstance(exp, int) or exp <= self._clock().timestamp():
            return None
        return claims

    def jwks(self) -> dict[str, object]:
        return {"keys": list(self._keys().jwks)}
