"""The key format: ``kp_<env>_<32 base62 random><6 base62 CRC32>``, and its keyed digest.

The checksum is not a secret: it lets a scanner recognise a keyplane key offline and lets
the verifier reject typos and garbage before any lookup. Strength comes from the 32 random
base62 characters (about 190 bits).

At rest a key is an HMAC-SHA256 under a server secret (the pepper). A fast keyed hash is
right for high-entropy secrets (NIST SP 800-63B 5.1.2.2); a slow password hash on the
verify path would only be a self-inflicted denial of service.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import zlib
from dataclasses import dataclass
from typing import Final, Literal

Environment = Literal["live", "test"]
ENVIRONMENTS: Final = ("live", "test")

BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH: Final = 32
CHECKSUM_LENGTH: Final = 6
PREFIX: Final = "kp_"
# "kp_" + "live"/"test" + "_" + random + checksum: both environments have four letters.
KEY_LENGTH: Final = len(PREFIX) + 4 + 1 + RANDOM_LENGTH + CHECKSUM_LENGTH
DIGEST_VERSION: Final = 1  # 1 = HMAC-SHA256(pepper, key), hex


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        chars.append(BASE62[rest])
    return "".join(reversed(chars))


def checksum(body: str) -> str:
    """The six base62 characters of CRC32 over everything before them."""
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def mint_key(environment: Environment = "live") -> str:
    """A new full key. The caller shows it once and keeps only its digest."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}")
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    body = f"{PREFIX}{environment}_{random_part}"
    return body + checksum(body)


@dataclass(frozen=True, slots=True)
class ParsedKey:
    environment: Environment
    full: str


def parse_key(candidate: str) -> ParsedKey | None:
    """The key if ``candidate`` has keyplane's shape and a correct checksum, else None.

    Cheap by design (a length test, a character-class test and one CRC32) so that garbage
    is answered without touching the database.
    """
    if len(candidate) != KEY_LENGTH or not candidate.startswith(PREFIX):
        return None
    environment = candidate[3:7]
    if environment not in ENVIRONMENTS or candidate[7] != "_":
        return None
    tail = candidate[8:]
    if not (tail.isascii() and tail.isalnum()):
        return None
    split = KEY_LENGTH - CHECKSUM_LENGTH
    if checksum(candidate[:split]) != candidate[split:]:
        return None
    return ParsedKey(environment=environment, full=candidate)  # type: ignore[arg-type]


def looks_like_key(text: str) -> bool:
    """Whether ``text`` contains something shaped like a key (for refusing keys in URLs)."""
    return PREFIX + "live_" in text or PREFIX + "test_" in text


def mask_key(key: str) -> str:
    """What is shown after creation: the prefix and the last four characters."""
    return f"{key[:8]}…{key[-4:]}"


class KeyHasher:
    """HMAC-SHA256 of a key under the pepper.

    The HMAC pads are computed once; each digest copies them (~0.56 µs against ~1.3 µs for
    a fresh ``hmac.new``, measured in DESIGN.md).
    """

    version: Final = DIGEST_VERSION

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 32:
            raise ValueError("the key-hashing secret must be at least 32 bytes")
        self._base = hmac.new(pepper, digestmod=hashlib.sha256)

    def digest(self, key: str) -> str:
        mac = self._base.copy()
        mac.update(key.encode())
        return mac.hexdigest()

    def secret_check(self) -> str:
        """A value that tells this pepper from another without revealing it.

        Stored in the database at first start, so that a start with a different secret is
        refused instead of answering NOT_FOUND for every key. A keyed hash of a fixed label
        (never of a key), so it is no more use to an attacker than any key digest.
        """
        mac = self._base.copy()
        mac.update(b"keyplane secret check v1")
        return mac.hexdigest()

    def webhook_secret(self, webhook_id: str, generation: int) -> str:
        """A webhook's signing secret (``whsec_…``), derived, never stored: the database keeps
        only the generation, so a copy of it signs nothing. Domain-separated from key
        digests by its label (no key starts with it), and from other webhooks and
        generations by the id and number after it."""
        mac = self._base.copy()
        mac.update(f"keyplane webhook secret v1\x00{webhook_id}\x00{generation}".encode())
        return "whsec_" + base64.b64encode(mac.digest()).decode()
