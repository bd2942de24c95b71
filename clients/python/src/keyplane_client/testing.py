"""A keyplane in memory, for your own tests: pass it as ``transport=`` to a client.

```python
from keyplane_client import Keyplane
from keyplane_client.testing import MockKeyplane

mock = MockKeyplane()
key = mock.add_key(scopes=["models:read"], metadata={"plan": "pro"})
kp = Keyplane("https://keyplane.test", mock.api_key, transport=mock)
assert kp.keys.verify(key, scopes=["models:read"]).valid
```

:class:`MockKeyplane` answers ``POST /v1/keys/verify`` as keyplane does: the same checks
in the same order (format and checksum, existence, expiry, status, IP allowlist, scopes
with keyplane's wildcards, rate limits, quota), the same verdict fields, and problem
documents for a missing or wrong API key (401), a malformed body (400/422) and any other
route (404). It works for :class:`~keyplane_client.Keyplane` and
:class:`~keyplane_client.AsyncKeyplane` alike (it is an ``httpx.MockTransport``), records
every request in ``requests``, and can answer the next calls with an outage
(:meth:`MockKeyplane.fail_next`). Rate limits are simple fixed windows, not keyplane's
GCRA: enough to see ``RATE_LIMITED``, not to measure a burst.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import secrets
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from keyplane_client._models import RateLimitParam

__all__ = ["MockKeyplane"]

# keyplane's key format and verdicts, written again here: the client does not depend on the
# server. tests/sdk/test_sdk_mock.py holds both to the same answers.
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_KEY_SHAPE = re.compile(r"^kp_(live|test)_[0-9A-Za-z]{38}$")
_SCOPE = re.compile(r"^(\*|[a-z][a-z0-9_]{0,39}:([a-z][a-z0-9_-]{0,39}|\*))$")
_PROBLEM = "urn:keyplane:problem:"


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        chars.append(_BASE62[rest])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), 6)


def mint_key(environment: Literal["live", "test"] = "test") -> str:
    """A key in keyplane's format, ``kp_<env>_<32 random><6 checksum>``: it passes
    keyplane's (and scanners') checksum test, so a mock key is recognised as a key."""
    body = f"kp_{environment}_" + "".join(secrets.choice(_BASE62) for _ in range(32))
    return body + _checksum(body)


def well_formed(candidate: str) -> bool:
    """Whether ``candidate`` has a keyplane key's shape and a correct checksum."""
    return bool(_KEY_SHAPE.match(candidate)) and _checksum(candidate[:-6]) == candidate[-6:]


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_CROCKFORD) for _ in range(26))


def _covers(held: Iterable[str], wanted: str) -> bool:
    """keyplane's rule: ``*`` covers everything, ``r:*`` every action of ``r`` (and only
    ``r:*`` or ``*`` cover ``r:*``)."""
    resource = wanted.split(":", 1)[0]
    return any(s in ("*", wanted) or (s == f"{resource}:*" and wanted != "*") for s in held)


@dataclass
class _Window:
    name: str
    limit: int
    period_seconds: int
    started: float = 0.0
    used: int = 0

    def state(self, now: float, *, spend: int = 0) -> dict[str, Any]:
        if now - self.started >= self.period_seconds:
            self.started, self.used = now, 0
        self.used += spend
        reset = max(0.0, self.started + self.period_seconds - now)
        return {
            "name": self.name,
            "limit": self.limit,
            "remaining": max(0, self.limit - self.used),
            "reset_seconds": math.ceil(reset),
            "reset_at": (datetime.now(UTC) + timedelta(seconds=reset)).isoformat(),
        }


@dataclass
class _FakeKey:
    key_id: str
    scopes: tuple[str, ...]
    app_id: str | None
    metadata: dict[str, Any]
    profile: dict[str, Any] | None
    environment: str
    expires_at: datetime | None
    ip_allowlist: tuple[str, ...]
    windows: list[_Window]
    quota: int | None
    active: bool = True

    def effective_scopes(self) -> list[str]:
        return sorted(self.scopes) if self.scopes else ["*"]


_TITLES = {
    429: ("too-many-requests", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


@dataclass
class _Failure:
    status: int
    retry_after: int | None

    def response(self) -> httpx.Response:
        slug, title = _TITLES.get(self.status, ("error", "Error"))
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return _problem(self.status, slug, title, "MockKeyplane.fail_next", headers)


class MockKeyplane(httpx.MockTransport):
    """An in-memory keyplane: its keys, and the answers to verifications about them.

    ``api_key`` is the key your client must send (a new well-formed one unless given);
    a request without it answers 401, as keyplane does. ``requests`` lists every request
    received, in order."""

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__(self._handle)
        self.api_key = api_key or mint_key()
        self.requests: list[httpx.Request] = []
        self._keys: dict[str, _FakeKey] = {}
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MockKeyplane(<{len(self._keys)} keys>)"

    # --- set up -----------------------------------------------------------------------

    def add_key(
        self,
        *,
        scopes: Sequence[str] = (),
        key_id: str | None = None,
        app_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
        environment: Literal["live", "test"] = "test",
        expires_at: datetime | None = None,
        ip_allowlist: Sequence[str] = (),
        ratelimits: Sequence[RateLimitParam] = (),
        quota: int | None = None,
        active: bool = True,
    ) -> str:
        """A new key this mock knows, returned in full. Without ``scopes`` it has full
        access, as in keyplane. ``profile`` is ``{"name": …, "settings": {…}}`` (an id is
        made up when not given); ``quota`` the uses left."""
        for scope in scopes:
            if not _SCOPE.match(scope):
                raise ValueError(f"{scope!r} is not a scope (resource:action, resource:*, *)")
        full = mint_key(environment)
        made_profile = None
        if profile is not None:
            made_profile = {
                "id": profile.get("id") or _new_id("prf_"),
                "name": profile.get("name", "profile"),
                "settings": dict(profile.get("settings", {})),
            }
        fake = _FakeKey(
            key_id=key_id or _new_id("key_"),
            scopes=tuple(scopes),
            app_id=app_id,
            metadata=dict(metadata or {}),
            profile=made_profile,
            environment=environment,
            expires_at=_aware(expires_at),
            ip_allowlist=tuple(ip_allowlist),
            windows=[_Window(r["name"], r["limit"], r["period_seconds"]) for r in ratelimits],
            quota=quota,
            active=active,
        )
        with self._lock:
            self._keys[full] = fake
        return full

    def key_id(self, key: str) -> str:
        """The id of a key this mock made."""
        return self._find(key).key_id

    def disable(self, key: str) -> None:
        """The key (given in full or by its id) answers ``DISABLED`` from now on."""
        self._find(key).active = False

    def enable(self, key: str) -> None:
        self._find(key).active = True

    def expire(self, key: str) -> None:
        """The key answers ``EXPIRED`` from now on."""
        self._find(key).expires_at = datetime.now(UTC) - timedelta(seconds=1)

    def remove(self, key: str) -> None:
        """The key is deleted: it answers ``NOT_FOUND``."""
        fake = self._find(key)
        with self._lock:
            self._keys = {k: v for k, v in self._keys.items() if v is not fake}

    def fail_next(self, status: int = 503, *, count: int = 1, retry_after: int | None = 1) -> None:
        """The next ``count`` requests answer ``status`` (a problem document, with
        ``Retry-After`` unless None): to test how your code meets an outage or a 429."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after) for _ in range(count))

    @property
    def verifications(self) -> list[dict[str, Any]]:
        """The body of every verification asked so far (the key in it masked)."""
        asked = []
        for request in self.requests:
            if request.url.path == "/v1/keys/verify":
                try:
                    data = json.loads(request.content)
                except ValueError:
                    continue
                if isinstance(data, dict) and isinstance(data.get("key"), str):
                    data["key"] = data["key"][:8] + "…" + data["key"][-4:]
                    asked.append(data)
        return asked

    def _find(self, key: str) -> _FakeKey:
        with self._lock:
            fake = self._keys.get(key)
            if fake is None:
                fake = next((v for v in self._keys.values() if v.key_id == key), None)
        if fake is None:
            raise KeyError("this mock made no such key")
        return fake

    # --- answering --------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self._lock:
            self.requests.append(request)
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            headers = (
                {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
            )
            return _problem(failure.status, "unavailable", "Mock failure", "fail_next", headers)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _problem(
                401,
                "unauthenticated",
                "Authentication required",
                "Send the mock's api_key as 'Authorization: Bearer <key>'.",
                {"WWW-Authenticate": 'Bearer realm="keyplane"'},
            )
        if request.method == "POST" and request.url.path == "/v1/keys/verify":
            return self._verify(request)
        return _problem(
            404,
            "not-found",
            "Not found",
            f"MockKeyplane answers POST /v1/keys/verify only, not {request.method} "
            f"{request.url.path}.",
        )

    def _verify(self, request: httpx.Request) -> httpx.Response:
        if "json" not in request.headers.get("content-type", ""):
            return _problem(415, "unsupported-media-type", "Unsupported media type", "Send JSON.")
        try:
            data = json.loads(request.content)
        except ValueError:
            return _problem(400, "malformed-json", "Malformed JSON", "The body is not JSON.")
        errors = _invalid(data)
        if errors:
            return _problem(
                422,
                "validation-error",
                "Invalid input",
                "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                errors=errors,
            )
        with self._lock:
            verdict = self._judge(
                data["key"], data.get("scopes", []), data.get("ip"), data.get("cost", 1)
            )
        return httpx.Response(200, json=verdict)

    def _judge(self, key: str, scopes: list[str], ip: str | None, cost: int) -> dict[str, Any]:
        fake = self._keys.get(key) if well_formed(key) else None
        if fake is None:
            return _verdict("NOT_FOUND")
        if fake.expires_at is not None and fake.expires_at <= datetime.now(UTC):
            return _verdict("EXPIRED", fake)
        if not fake.active:
            return _verdict("DISABLED", fake)
        if fake.ip_allowlist and not _allowed(ip, fake.ip_allowlist):
            return _verdict("IP_FORBIDDEN", fake)
        held = fake.effective_scopes()
        missing = [s for s in scopes if not _covers(held, s)]
        if missing:
            return _verdict("INSUFFICIENT_SCOPE", fake, missing=missing)
        now = time.monotonic()
        states = [w.state(now) for w in fake.windows]
        quota = fake.quota
        code = "VALID"
        if any(s["remaining"] < cost for s in states):
            code = "RATE_LIMITED"
        elif quota is not None and quota < cost:
            code = "USAGE_EXCEEDED"
        else:  # every limit admits: spend on all of them
            states = [w.state(now, spend=cost) for w in fake.windows]
            if quota is not None:
                fake.quota = quota = quota - cost
        limits = {"ratelimits": states, "quota": None if quota is None else {"remaining": quota}}
        return _verdict(code, fake, limits=limits)


def _verdict(
    code: str,
    fake: _FakeKey | None = None,
    *,
    missing: list[str] | None = None,
    limits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    verdict: dict[str, Any] = {
        "valid": code == "VALID",
        "code": code,
        "key_id": None,
        "app_id": None,
        "scopes": [],
        "missing_scopes": missing or [],
        "profile": None,
        "metadata": None,
        "environment": None,
        "expires_at": None,
        "ratelimits": [],
        "quota": None,
    }
    if fake is not None:
        verdict.update(
            key_id=fake.key_id,
            app_id=fake.app_id,
            scopes=fake.effective_scopes(),
            profile=fake.profile,
            metadata=fake.metadata,
            environment=fake.environment,
            expires_at=fake.expires_at.isoformat() if fake.expires_at else None,
        )
    verdict.update(limits or {})
    return verdict


def _aware(moment: datetime | None) -> datetime | None:
    """A time with its zone (a naive one is taken as UTC, as keyplane answers in UTC)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _allowed(ip: str | None, allowlist: Iterable[str]) -> bool:
    if ip is None:
        return False
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowlist)


def _invalid(data: Any) -> list[dict[str, str]]:
    """The field errors keyplane would answer for this verification body."""
    if not isinstance(data, dict):
        return [{"field": "body", "message": "must be a JSON object"}]
    errors = [
        {"field": name, "message": "is not a field of this request"}
        for name in data
        if name not in ("key", "scopes", "ip", "cost")
    ]
    if not isinstance(data.get("key"), str):
        message = "is required" if "key" not in data else "must be a string"
        errors.append({"field": "key", "message": message})
    scopes = data.get("scopes", [])
    if not isinstance(scopes, list):
        errors.append({"field": "scopes", "message": "must be a list of scopes"})
        scopes = []
    errors.extend(
        {"field": f"scopes[{i}]", "message": "is not a scope (resource:action, resource:*, *)"}
        for i, scope in enumerate(scopes)
        if not (isinstance(scope, str) and _SCOPE.match(scope))
    )
    ip = data.get("ip")
    if ip is not None:
        try:
            ipaddress.ip_address(ip if isinstance(ip, str) else "")
        except ValueError:
            errors.append({"field": "ip", "message": "must be an IPv4 or IPv6 address"})
    cost = data.get("cost", 1)
    if type(cost) is not int or not 0 <= cost <= 1_000_000:
        errors.append({"field": "cost", "message": "must be an integer from 0 to 1000000"})
    return errors


def _problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    *,
    errors: list[dict[str, str]] | None = None,
) -> httpx.Response:
    document: dict[str, Any] = {
        "type": _PROBLEM + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        document["errors"] = errors
    return httpx.Response(
        status,
        content=json.dumps(document).encode(),
        headers={"Content-Type": "application/problem+json", **(headers or {})},
    )
