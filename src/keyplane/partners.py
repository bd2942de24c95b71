"""GitHub secret scanning's signing keys: fetched, cached, and checked against each report.

GitHub signs every report it posts with ECDSA P-256 over SHA-256 of the raw body and names
the key in ``Github-Public-Key-Identifier``; its public keys are published as JSON
(``{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}``) at
``KEYPLANE_GITHUB_KEYS_URL``. Every listed key verifies, current or not: GitHub keeps
signing with a key for a while after announcing its successor.

Fail closed, always: keys that cannot be fetched (or parsed), an identifier not among them,
or a signature that does not hold refuse the report; nothing of it is processed. Keys are
cached for ``ttl`` seconds; an unknown identifier refetches them (GitHub rotated), but at
most once per ``refetch_after`` seconds, so forged identifiers cannot make keyplane hammer
GitHub; a failed fetch also waits that long before the next try. ``verify`` may wait on
the network: the web layer calls it on a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from keyplane.domain.errors import PartnerKeysUnavailable, SignatureRefused
from keyplane.domain.ports import Metrics
from keyplane.outbound import FetchFailed

log = logging.getLogger(__name__)

GITHUB_KEYS_URL: Final = "https://api.github.com/meta/public_keys/secret_scanning"
IDENTIFIER_MAX: Final = 200
SIGNATURE_MAX: Final = 200  # base64 of a DER P-256 signature is under 100 characters


def parse_keys(document: bytes) -> dict[str, ec.EllipticCurvePublicKey]:
    """The P-256 keys of a public-keys document by identifier; ValueError when it holds
    none (a document that is not GitHub's, or a key format keyplane does not check)."""
    data = orjson.loads(document)
    listed = data.get("public_keys") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise ValueError("no public_keys list")  # noqa: TRY004 - callers catch ValueError: a bad document
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for entry in listed:
        if not isinstance(entry, dict):
            continue
        identifier, pem = entry.get("key_identifier"), entry.get("key")
        if not isinstance(identifier, str) or not isinstance(pem, str):
            continue
        try:
            key = load_pem_public_key(pem.encode())
        except (ValueError, TypeError):
            continue
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            keys[identifier] = key
    if not keys:
        raise ValueError("no P-256 public key in the document")
    return keys


class GithubKeys:
    """The PartnerKeys port for GitHub secret scanning."""

    def __init__(
        self,
        url: str,
        fetch: Callable[[str], bytes],
        metrics: Metrics,
        *,
        ttl: float = 3600.0,
        refetch_after: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._fetch = fetch
        self._metrics = metrics
        self._ttl = ttl
        self._refetch_after = refetch_after
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: Mapping[str, ec.EllipticCurvePublicKey] = {}
        self._fetched_at: float | None = None  # when the cached keys were fetched
        self._tried_at: float | None = None  # the last fetch attempt, successful or not

    def verify(self, identifier: str | None, signature: str | None, body: bytes) -> None:
        try:
            self._verify(identifier, signature, body)
        except SignatureRefused as exc:
            self._metrics.leak_report("signature_refused")
            log.warning("refused a GitHub secret-scanning report: %s", exc)
            raise
        except PartnerKeysUnavailable as exc:
            self._metrics.leak_report("keys_unavailable")
            log.error("refused a GitHub secret-scanning report: %s", exc)  # noqa: TRY400 - the message says it all; no traceback
            raise

    def _verify(self, identifier: str | None, signature: str | None, body: bytes) -> None:
        if not identifier or not signature:
            raise SignatureRefused(
                "The report has no Github-Public-Key-Identifier or Github-Public-Key-Signature."
            )
        if len(identifier) > IDENTIFIER_MAX or len(signature) > SIGNATURE_MAX:
            raise SignatureRefused("The signature headers are longer than any GitHub sends.")
        try:
            der = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureRefused("Github-Public-Key-Signature is not base64.") from None
        key = self._key(identifier)
        try:
            key.verify(der, body, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise SignatureRefused(
                "The signature does not verify over the body with the named key."
            ) from None

    def _key(self, identifier: str) -> ec.EllipticCurvePublicKey:
        with self._lock:
            now = self._monotonic()
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
            unknown = identifier not in self._keys
            if stale or unknown:
                may_fetch = self._tried_at is None or now - self._tried_at >= self._refetch_after
                if may_fetch:
                    self._refresh(now)
                elif stale:
                    # Keys past their time are not trusted, and the last fetch failed a
                    # moment ago: refuse rather than hammer the URL or trust old keys.
                    raise PartnerKeysUnavailable(
                        "GitHub's secret-scanning public keys cannot be fetched right now."
                    )
            key = self._keys.get(identifier)
        if key is None:
            raise SignatureRefused("Github-Public-Key-Identifier names no key GitHub publishes.")
        return key

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            keys = parse_keys(self._fetch(self._url))
        except FetchFailed as exc:
            self._expire_if_stale(now)
            raise PartnerKeysUnavailable(
                f"GitHub's secret-scanning public keys cannot be fetched: {exc}"
            ) from None
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError too
            self._expire_if_stale(now)
            raise PartnerKeysUnavailable(
                f"GitHub's secret-scanning public keys document cannot be read: {exc}"
            ) from None
        self._keys = keys
        self._fetched_at = now

    def _expire_if_stale(self, now: float) -> None:
        if self._fetched_at is None or now - self._fetched_at >= self._ttl:
            self._keys = {}
