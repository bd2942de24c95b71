"""Webhooks' rules: the events, which audit action raises which, the payload, where a
delivery may go, how it is signed and when it is tried again.

Signing follows the Standard Webhooks specification: ``webhook-id`` (the message id, the
same on every retry so receivers can drop duplicates), ``webhook-timestamp`` (Unix seconds
of this attempt) and ``webhook-signature``, ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``,
space-separated when two secrets are valid (for 24 hours after a roll).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import orjson
from standardwebhooks import Webhook as _Signer

from keyplane.domain.audit import timestamp as _iso
from keyplane.domain.errors import InvalidInput
from keyplane.domain.models import AuditEvent

EVENTS: Final[Mapping[str, str]] = {
    "key.created": "An API key was issued.",
    "key.updated": "An API key's status, profile, description, metadata or expiry changed.",
    "key.deleted": "An API key was deleted.",
    "key.rotated": "An API key was rotated.",
    "key.expiring": "An API key expires soon.",
    "key.expired": "An API key expired.",
    "key.rotation_due": "An API key is due for rotation.",
    "key.leaked": "An API key was reported leaked and disabled or deleted.",
    "app.created": "An app was created.",
    "app.updated": "An app changed.",
    "app.deleted": "An app and its keys were deleted.",
    "user.created": "A person was added to the organization.",
    "user.updated": "A person's name or role changed.",
    "user.deleted": "A person was removed from the organization.",
    "webhook.test": "A test message sent on request (POST /v1/webhooks/{id}/test).",
}
ALL: Final = "*"

# Audit action -> webhook event. Some actions are written by jobs that may not exist yet
# in a given build (key.expiring, key.expired, key.rotation_due): a mapping names an action
# whether or not the audit catalogue has it, and an action without a mapping raises no event.
AUDIT_EVENTS: Final[Mapping[str, str]] = {
    "key.create": "key.created",
    "key.update": "key.updated",
    "key.delete": "key.deleted",
    "key.rotate": "key.rotated",
    "key.expiring": "key.expiring",
    "key.expired": "key.expired",
    "key.rotation_due": "key.rotation_due",
    "key.leaked": "key.leaked",
    "app.create": "app.created",
    "app.update": "app.updated",
    "app.delete": "app.deleted",
    "user.create": "user.created",
    "user.update": "user.updated",
    "user.delete": "user.deleted",
}

URL_MAX: Final = 2048
EVENTS_MAX: Final = len(EVENTS) + 1
TIMEOUT_SECONDS: Final = 10.0
EXCERPT_MAX: Final = 500
ROLL_GRACE: Final = timedelta(hours=24)
# A message is tried again until its first attempt is this old, then given up; an endpoint
# failing every attempt for DISABLE_AFTER is disabled and its owners told.
RETRY_FOR: Final = timedelta(hours=24)
DISABLE_AFTER: Final = timedelta(days=5)
_FIRST_RETRY: Final = 5.0  # seconds; jitter keeps it under 10
_BACKOFF_FACTOR: Final = 4.0
_BACKOFF_CAP: Final = 6 * 3600.0


def event_for(action: str) -> str | None:
    """The webhook event an audit action raises, or None."""
    return AUDIT_EVENTS.get(action)


def check_events(events: Sequence[str]) -> tuple[str, ...]:
    """The subscribed events, deduplicated and sorted; ``*`` alone stands for every one."""
    if not events:
        raise InvalidInput.field("events", f"must name at least one event, or {ALL!r} for all")
    if len(events) > EVENTS_MAX:
        raise InvalidInput.field("events", f"must name at most {EVENTS_MAX} events")
    unknown = sorted({e for e in events if e != ALL and e not in EVENTS})
    if unknown:
        raise InvalidInput.field(
            "events", f"unknown events {', '.join(map(repr, unknown))}; known: {', '.join(EVENTS)}"
        )
    return (ALL,) if ALL in events else tuple(sorted(set(events)))


def subscribes(events: Iterable[str], event: str) -> bool:
    return any(e in (ALL, event) for e in events)


# Link-local and cloud metadata addresses: never a target, whatever the settings say
# (169.254.169.254 answers instance credentials on AWS, GCP and Azure; fd00:ec2::254 is
# AWS's IPv6 one; 100.100.100.200 Alibaba's). Unspecified and multicast addresses are no
# endpoint either.
_FORBIDDEN: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",
        "fe80::/10",
        "fd00:ec2::254/128",
        "100.100.100.200/32",
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",
        "ff00::/8",
        "255.255.255.255/32",
    )
)
_METADATA_HOSTS: Final = frozenset(
    ("metadata.google.internal", "metadata", "metadata.goog", "instance-data")
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a delivery must not connect to ``address``, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:  # ::ffff:169.254.169.254 is 169.254.169.254
            return refusal(embedded, allow_private=allow_private)
    if any(address in network for network in _FORBIDDEN):
        return "a link-local, cloud metadata or non-unicast address"
    if not allow_private and (
        address.is_private or address.is_loopback or address.is_reserved or address.is_link_local
    ):
        return "a private or loopback address (KEYPLANE_WEBHOOKS_ALLOW_PRIVATE=false)"
    return None


def check_url(url: str, *, allow_private: bool) -> str:
    """A webhook URL as saved: http or https, a host, no credentials, within the length
    limit, and, when the host is an address, one a delivery may connect to. A host name
    is checked again at every delivery, after DNS (keyplane/outbound.py)."""
    url = url.strip()
    if not url:
        raise InvalidInput.field("url", "must not be blank")
    if len(url) > URL_MAX:
        raise InvalidInput.field("url", f"must be at most {URL_MAX} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidInput.field("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput.field("url", f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput.field("url", "must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput.field("url", "must not contain credentials (user:password@)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidInput.field("url", "must name a host")
    if port == 0:
        raise InvalidInput.field("url", "must not name port 0")
    if host.lower() in _METADATA_HOSTS:
        raise InvalidInput.field("url", "must not name a cloud metadata service")
    address = parse_address(host)
    if address is not None:
        reason = refusal(address, allow_private=allow_private)
        if reason is not None:
            raise InvalidInput.field("url", f"must not name {reason}")
    return url


def parse_address(host: str) -> IPAddress | None:
    """The address a URL's host names literally (``[::1]`` included), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def payload(event_type: str, event: AuditEvent) -> bytes:
    """The body of the message an audit event raises (the Standard Webhooks shape).

    Built from the audit event only, which never holds a secret. Serialised once, when the
    message is written: every retry signs and sends these very bytes.
    """
    data: dict[str, Any] = {
        **event.details,
        "id": event.target_id,
        "object": event.target_type,
        "name": event.target_name,
        "organization_id": event.org_id,
        "actor": {"type": event.actor_type, "id": event.actor, "name": event.actor_name},
        "changes": event.changes,
        "audit_event_id": event.id,
    }
    return orjson.dumps({"type": event_type, "timestamp": _iso(event.created_at), "data": data})


def payload_of_test(webhook_id: str, org_id: str, actor: Mapping[str, Any], now: datetime) -> bytes:
    data = {
        "id": webhook_id,
        "object": "webhook",
        "organization_id": org_id,
        "actor": dict(actor),
        "message": "A test message from keyplane.",
    }
    return orjson.dumps({"type": "webhook.test", "timestamp": _iso(now), "data": data})


def signature(secrets: Sequence[str], message_id: str, at: datetime, body: bytes) -> str:
    """``webhook-signature``: one ``v1,…`` per valid secret, space-separated."""
    text = body.decode()
    return " ".join(_Signer(s).sign(message_id, at, text) for s in secrets)


def headers(secrets: Sequence[str], message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "keyplane-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature(secrets, message_id, at, body),
    }


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long after its ``attempts``-th failed attempt a message is tried again:
    exponential (5 s, 20 s, 80 s, … capped at 6 h) with up to ±25 % jitter, so receivers
    recovering from an outage are not hit by every sender at once."""
    base = min(_FIRST_RETRY * _BACKOFF_FACTOR ** max(attempts - 1, 0), _BACKOFF_CAP)
    jitter = (rng or random).uniform(0.75, 1.25)
    return timedelta(seconds=base * jitter)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: an HTTP status or a transport error, how long it took and
    the start of the response (``excerpt``), for the deliveries list."""

    status_code: int | None
    latency_ms: int
    excerpt: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


MessageStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class Webhook:
    """An endpoint of an organization and the events it receives.

    It holds no secret: the signing secret is derived from the server secret, the id and
    ``secret_generation`` (KeyHasher.webhook_secret). ``previous_secret_until`` is when the
    generation before the current one stops signing (24 h after a roll). ``failing_since``
    is the first failed attempt since the last success (None while it succeeds);
    ``notice_due`` while the owners of an endpoint the job disabled are not yet emailed.
    """

    id: str
    org_id: str
    url: str
    events: tuple[str, ...]
    enabled: bool
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    secret_generation: int = 1
    previous_secret_until: datetime | None = None
    failing_since: datetime | None = None
    disabled_reason: str | None = None
    notice_due: bool = False

    def generations(self, now: datetime) -> tuple[int, ...]:
        """The secret generations that sign now: the current one first."""
        if self.previous_secret_until is not None and now < self.previous_secret_until:
            return (self.secret_generation, self.secret_generation - 1)
        return (self.secret_generation,)


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One try at delivering a message (``dlv_…``)."""

    id: str
    message_id: str
    webhook_id: str
    org_id: str
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    excerpt: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """A message of the outbox (``msg_…``, the ``webhook-id`` receivers see on every try),
    written in the transaction of the change it reports.

    ``retry_from`` starts the retry budget (the creation, or the last redelivery);
    ``lease_until`` is how long a delivery job holds it (a job that dies holding it lets go
    when the lease ends).
    """

    id: str
    org_id: str
    webhook_id: str
    event_type: str
    payload: bytes
    status: MessageStatus
    created_at: datetime
    retry_from: datetime
    next_attempt_at: datetime | None
    attempt_count: int = 0
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    lease_until: datetime | None = None
    attempts: tuple[WebhookAttempt, ...] = ()
