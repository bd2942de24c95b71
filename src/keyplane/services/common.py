"""What every use case shares: who is acting, input checks, paging and audit events."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

import orjson

from keyplane.domain.audit import actor_type
from keyplane.domain.errors import Escalation, InvalidInput, MissingScope, NotFound
from keyplane.domain.ids import Kind, has_kind, new_id
from keyplane.domain.limits import DESCRIPTION_MAX, NAME_MAX, PAGE_MAX
from keyplane.domain.models import AuditEvent, JSONObject, Organization, Page
from keyplane.domain.ports import Transaction
from keyplane.domain.ratelimits import Admission
from keyplane.domain.scopes import ScopeSet
from keyplane.domain.webhooks import WebhookMessage, event_for, payload


class _Unset:
    """Marks a field a partial update leaves alone (None is a value: "clear it")."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: an API key (``key_…``) or a console user (``usr_…``)."""

    org_id: str
    actor_id: str
    scopes: ScopeSet
    # For audit events only: who, in words, and from where. The web layer adds the request's
    # client address and user agent (api/deps.py, console/context.py); services never read
    # HTTP. None outside a request (CLI, jobs).
    actor_name: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    # The calling key's rate limits and quota after this call was admitted (None: no limits
    # or not a key): the web layer turns it into RateLimit headers.
    limits: Admission | None = None

    def require(self, scope: str) -> None:
        if not self.scopes.covers(scope):
            raise MissingScope(scope)

    def ensure_can_grant(self, field: str, requested: ScopeSet) -> None:
        """Nobody grants what they do not hold."""
        if not requested.issubset(self.scopes):
            excess = sorted(s for s in requested.scopes if not self.scopes.covers(s))
            raise Escalation(field, excess)


def check_name(field: str, value: str, maximum: int = NAME_MAX) -> str:
    stripped = value.strip()
    if "\x00" in stripped:
        raise InvalidInput.field(field, "must not contain NUL characters")
    if not stripped:
        raise InvalidInput.field(field, "must not be blank")
    if len(stripped) > maximum:
        raise InvalidInput.field(field, f"must be at most {maximum} characters")
    return stripped


def check_description(value: str) -> str:
    value = value.strip()
    if "\x00" in value:
        raise InvalidInput.field("description", "must not contain NUL characters")
    if len(value) > DESCRIPTION_MAX:
        raise InvalidInput.field("description", f"must be at most {DESCRIPTION_MAX} characters")
    return value


def load_org(tx: Transaction, org_id: str) -> Organization:
    org = tx.orgs.get(org_id)
    if org is None:
        raise NotFound("organization", org_id)
    return org


def check_json_size(field: str, value: JSONObject, maximum: int) -> JSONObject:
    """A JSON object every store keeps as given: within ``maximum`` bytes, integers within
    64 bits, nesting under 255 levels, valid Unicode, no NaN or infinity, no NUL."""
    if not isinstance(value, dict):
        raise InvalidInput.field(field, "must be a JSON object")
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise InvalidInput.field(
            field,
            "must be plain JSON: integers within 64 bits, nesting under 255 levels, "
            "valid Unicode text",
        ) from exc
    if b"\\u0000" in encoded:
        raise InvalidInput.field(field, "must not contain NUL characters")
    if _non_finite(value):
        raise InvalidInput.field(field, "must not contain NaN or infinite numbers")
    size = len(encoded)
    if size > maximum:
        raise InvalidInput.field(field, f"is {size} bytes as JSON; the limit is {maximum} bytes")
    return value


def _non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False


def check_cursor(cursor: str | None, kind: Kind) -> str | None:
    if cursor is not None and not has_kind(cursor, kind):
        raise InvalidInput.field("cursor", "is not a cursor this list returned")
    return cursor


def check_limit(limit: int) -> int:
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput.field("limit", f"must be between 1 and {PAGE_MAX}")
    return limit


T = TypeVar("T")
U = TypeVar("U")


def paginate(fetch: Callable[[int], Sequence[T]], limit: int, ident: Callable[[T], str]) -> Page[T]:
    """Fetch one more than asked; its presence says there is a next page."""
    rows = list(fetch(limit + 1))
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, ident(rows[-1]))
    return Page(rows, None)


def _key_name(tx: Transaction, principal: Principal) -> str | None:
    # A key's name is not in the verification cache (which holds only what a verdict
    # needs); one read by primary key, on a mutation only.
    if actor_type(principal.actor_id) != "key":
        return None
    key = tx.keys.get(principal.org_id, principal.actor_id)
    return key.name if key is not None else None


def diff(before: object, after: object, names: Sequence[str]) -> dict[str, tuple[object, object]]:
    """``record``'s ``changes`` for two versions of a record: each named field, before and
    after (record keeps only those that differ)."""
    return {name: (getattr(before, name), getattr(after, name)) for name in names}


def record(
    tx: Transaction,
    principal: Principal,
    now: datetime,
    action: str,
    target_type: str,
    target_id: str,
    *,
    target_name: str | None = None,
    changes: Mapping[str, tuple[object, object]] | None = None,
    **details: Any,
) -> None:
    """An audit event, written in the same transaction as the change it describes.

    ``changes`` maps each changed field to its (before, after) values. Callers pass names,
    ids and scopes: never a key, a digest, a password or a session token.

    An action that raises a webhook event also writes its outbox messages here, in the same
    transaction (``publish``): committed together, or not at all.
    """
    event = tx.audit.append(
        AuditEvent(
            id=new_id("evt"),
            org_id=principal.org_id,
            actor=principal.actor_id,
            actor_type=actor_type(principal.actor_id),
            actor_name=principal.actor_name or _key_name(tx, principal),
            action=action,
            target_type=target_type,
            target_id=target_id,
            target_name=target_name if target_name is not None else details.get("name"),
            client_ip=principal.client_ip,
            user_agent=principal.user_agent,
            changes={
                name: {"before": before, "after": after}
                for name, (before, after) in (changes or {}).items()
                if before != after
            },
            details=details,
            created_at=now,
        )
    )
    publish(tx, event)


def publish(tx: Transaction, event: AuditEvent) -> None:
    """The outbox messages an audit event raises: one per enabled endpoint of its
    organization subscribed to its webhook event. An action raising no event costs nothing;
    one that does costs one indexed query when nobody listens."""
    event_type = event_for(event.action)
    if event_type is None:
        return
    endpoints = tx.webhooks.subscribed(event.org_id, event_type)
    if not endpoints:
        return
    body = payload(event_type, event)
    tx.webhooks.enqueue(
        [
            WebhookMessage(
                id=new_id("msg"),
                org_id=event.org_id,
                webhook_id=webhook_id,
                event_type=event_type,
                payload=body,
                status="pending",
                created_at=event.created_at,
                retry_from=event.created_at,
                next_attempt_at=event.created_at,
            )
            for webhook_id in endpoints
        ]
    )
