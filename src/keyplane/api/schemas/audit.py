"""Response bodies: audit events, as JSON and as CSV rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from keyplane.domain.models import AuditEvent


class Actor(BaseModel):
    type: Literal["user", "key", "system"]
    id: str
    name: str | None


class Target(BaseModel):
    type: str
    id: str
    name: str | None


class Change(BaseModel):
    before: Any
    after: Any


class AuditEventOut(BaseModel):
    id: str
    time: datetime
    organization: str
    actor: Actor
    action: str = Field(examples=["key.update"])
    target: Target
    client_ip: str | None = Field(description="The request's client address, when there was one.")
    user_agent: str | None
    changes: dict[str, Change] = Field(description="Each changed field, before and after.")
    details: dict[str, Any]
    seq: int = Field(description="Position in the organization's hash chain, from 1.")
    prev_hash: str
    hash: str = Field(description="SHA-256 of the event's canonical form, hex.")

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            time=event.created_at,
            organization=event.org_id,
            actor=Actor(
                type=event.actor_type,
                id=event.actor,
                name=event.actor_name,
            ),
            action=event.action,
            target=Target(type=event.target_type, id=event.target_id, name=event.target_name),
            client_ip=event.client_ip,
            user_agent=event.user_agent,
            changes={k: Change(**v) for k, v in event.changes.items()},
            details=event.details,
            seq=event.seq,
            prev_hash=event.prev_hash,
            hash=event.hash,
        )


CSV_COLUMNS: Final = (
    "id",
    "time",
    "seq",
    "actor_type",
    "actor_id",
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
    "hash",
)
