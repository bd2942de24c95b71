"""The audit log's rules: the catalogue of actions and the hash chain.

Each organization's events form a chain: event ``n`` stores its sequence number ``n``, the
hash of event ``n - 1`` (``GENESIS`` for the first) and its own hash, the SHA-256 of its
canonical form. The canonical form is JSON over an explicit list of fields with sorted keys
and fixed separators, so it does not depend on a column order, a driver or ``str()`` of a
value. Changing ``CANONICAL_FIELDS`` or ``canonical`` breaks every stored chain: a new form
needs a version of its own, never an edit of this one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from keyplane.domain.errors import FieldError, InvalidInput
from keyplane.domain.models import AuditEvent

ID_FILTER_MAX: Final = 60  # the longest id an event names (audit_events.target_id)

GENESIS: Final = "0" * 64
"""The previous hash of an organization's first event."""

ActorType = Literal["user", "key", "system"]

# Every action an audit event may name. Stable: clients filter on these names, so a name
# is never reused for a different meaning; a new action is added, an old one kept.
ACTIONS: Final[Mapping[str, str]] = {
    "org.create": "An organization was created with its owner.",
    "org.update": "The organization's settings changed.",
    "user.create": "A person was added to the organization.",
    "user.update": "A person's name or role changed.",
    "user.delete": "A person was removed from the organization.",
    "user.accept": "A person accepted an invitation by setting a password.",
    "user.accept_failed": "A set-password link was used after it expired or was replaced.",
    "user.password_set": "A person's password was set (by link, initially or by an operator).",
    "user.sign_in": "A person signed in to the console.",
    "user.sign_in_failed": "A console sign-in failed.",
    "key.create": "An API key was issued.",
    "key.update": "An API key's status, profile, description, metadata or expiry changed.",
    "key.delete": "An API key was deleted.",
    "key.rotate": "An API key was rotated: a successor issued, the old key kept for a grace.",
    "key.expiring": "An API key's expiry is within a warning threshold of the organization.",
    "key.expired": "An API key's expiry passed (seen by the expiry job, once per expiry).",
    "key.rotation_due": "An API key is older than the organization's rotation period.",
    "key.purge": "An expired API key was purged: its record and secret digest destroyed.",
    "key.leaked": "An API key reported leaked (POST /v1/keys/leaked, GitHub secret scanning) "
    "was disabled or deleted, per the organization's leaked_key_action.",
    "app.create": "An app was created.",
    "app.update": "An app's name, description or scopes changed.",
    "app.delete": "An app and every key in it were deleted.",
    "profile.create": "A rate-limit profile was created.",
    "profile.update": "A rate-limit profile changed.",
    "profile.delete": "A rate-limit profile was deleted.",
    "resource.create": "A resource was added to the permission catalogue.",
    "resource.update": "A resource of the permission catalogue changed.",
    "resource.delete": "A resource was removed from the permission catalogue.",
    "preset.create": "A permission preset was created.",
    "preset.update": "A permission preset's name, description or scopes changed.",
    "preset.delete": "A permission preset was deleted (keys and apps made from it keep theirs).",
    "webhook.create": "A webhook endpoint was added.",
    "webhook.update": "A webhook's URL, events, description or enabled state changed.",
    "webhook.delete": "A webhook endpoint was deleted with its deliveries.",
    "webhook.roll_secret": "A webhook's signing secret was rolled (the old one signs 24 h more).",
    "webhook.disable": "The delivery job disabled a webhook whose deliveries failed for 5 days.",
    "webhook.redeliver": "A webhook message was queued to be sent again.",
    "webhook.test": "A test message was queued to a webhook.",
    "signing_key.rotate": "The token signing keys were rotated (instance-wide).",
}

CANONICAL_FIELDS: Final = (
    "id",
    "org_id",
    "seq",
    "created_at",
    "actor_type",
    "actor",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "target_name",
    "client_ip",
    "user_agent",
    "changes",
    "details",
    "prev_hash",
)


def actor_type(actor_id: str) -> ActorType:
    """What kind of actor an id names, by its prefix."""
    if actor_id.startswith("key_"):
        return "key"
    if actor_id.startswith("usr_"):
        return "user"
    return "system"


def timestamp(value: datetime) -> str:
    """A time as the canonical form writes it: UTC, microseconds, always the same length."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(values: Mapping[str, Any]) -> bytes:
    """The bytes an event's hash covers: exactly ``CANONICAL_FIELDS``, nothing else."""
    picked = {name: values[name] for name in CANONICAL_FIELDS}
    picked["created_at"] = timestamp(picked["created_at"])
    return json.dumps(
        picked, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def event_hash(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(values)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which events a reader wants: each filter given narrows the range.

    ``action`` is an action of the catalogue, or a prefix ending in a dot (``key.``) for every
    action on one kind of target. ``since`` is inclusive, ``until`` exclusive.
    """

    actor_id: str | None = None
    action: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def action_prefix(self) -> str | None:
        return self.action if self.action is not None and self.action.endswith(".") else None

    def checked(self) -> AuditQuery:
        """The query itself, or InvalidInput naming each filter that cannot match."""
        errors: list[FieldError] = []
        for name, value in (("actor_id", self.actor_id), ("target_id", self.target_id)):
            if value is not None and not 1 <= len(value) <= ID_FILTER_MAX:
                errors.append(FieldError(name, f"must be between 1 and {ID_FILTER_MAX} characters"))
            elif value is not None and "\x00" in value:
                errors.append(FieldError(name, "must not contain NUL characters"))
        if self.action is not None:
            prefix = self.action_prefix
            if prefix is not None and not any(a.startswith(prefix) for a in ACTIONS):
                errors.append(
                    FieldError("action", f"no action of the catalogue starts with {prefix!r}")
                )
            if prefix is None and self.action not in ACTIONS:
                errors.append(
                    FieldError(
                        "action",
                        "is not an action of the catalogue; give one (key.create) or a "
                        "prefix ending in a dot (key.)",
                    )
                )
        for name, moment in (("from", self.since), ("to", self.until)):
            if moment is not None and moment.tzinfo is None:
                errors.append(FieldError(name, "must include a time zone (Z or +hh:mm)"))
        if (
            self.since is not None
            and self.until is not None
            and self.since.tzinfo is not None
            and self.until.tzinfo is not None
            and self.since > self.until
        ):
            errors.append(FieldError("from", "must not be after to"))
        if errors:
            raise InvalidInput(*errors)
        return self


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place an organization's chain does not hold, in words a reader can act on."""

    org_id: str
    seq: int
    event_id: str | None
    problem: Literal["altered", "inserted", "removed"]
    detail: str

    def __str__(self) -> str:
        named = f"event {self.event_id} (seq {self.seq})" if self.event_id else f"seq {self.seq}"
        return f"{self.org_id}: {named} {self.problem}: {self.detail}"


class ChainChecker:
    """Walks one organization's events in ``seq`` order and finds the first break.

    ``head_seq``/``head_hash`` are the chain head the writers keep. An event whose stored hash
    is not the hash of its contents was altered; one whose ``prev_hash`` is not the previous
    event's hash, or that lies past the chain head, was inserted; a gap in the sequence, or a
    head past the last event, means events were removed.
    """

    def __init__(self, org_id: str, head_seq: int, head_hash: str) -> None:
        self.org_id = org_id
        self._head = (head_seq, head_hash)
        self._seq = 0
        self._hash = GENESIS

    def feed(self, event: AuditEvent) -> ChainBreak | None:
        seq, event_id = event.seq, event.id
        if seq > self._head[0]:
            return self._break(
                seq, event_id, "inserted", f"the chain head ends at seq {self._head[0]}"
            )
        if seq > self._seq + 1:
            first, last = self._seq + 1, seq - 1
            missing = f"seq {first}" if first == last else f"seq {first} to {last}"
            return self._break(seq, event_id, "removed", f"{missing} missing before it")
        if seq <= self._seq:
            return self._break(seq, event_id, "inserted", f"repeats seq {seq}")
        if event.hash != event_hash({name: getattr(event, name) for name in CANONICAL_FIELDS}):
            return self._break(seq, event_id, "altered", "its hash does not match its contents")
        if event.prev_hash != self._hash:
            return self._break(
                seq, event_id, "inserted", "its previous hash is not the previous event's hash"
            )
        self._seq, self._hash = seq, event.hash
        return None

    def finish(self) -> ChainBreak | None:
        """After the last event: the head must be exactly where the walk ended."""
        head_seq, head_hash = self._head
        if head_seq > self._seq:
            first = self._seq + 1
            missing = f"seq {first}" if first == head_seq else f"seq {first} to {head_seq}"
            return self._break(first, None, "removed", f"{missing} missing at the end")
        if head_hash != self._hash:
            return self._break(head_seq, None, "altered", "the chain head's hash differs")
        return None

    def _break(
        self,
        seq: int,
        event_id: str | None,
        problem: Literal["altered", "inserted", "removed"],
        detail: str,
    ) -> ChainBreak:
        return ChainBreak(self.org_id, seq, event_id, problem, detail)
