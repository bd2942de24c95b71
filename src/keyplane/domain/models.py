"""The objects keyplane manages, as plain immutable records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from keyplane.domain.leaks import LeakedKeyAction
from keyplane.domain.ratelimits import Quota, RateLimit
from keyplane.domain.routes import Route
from keyplane.domain.scopes import ScopeSet
from keyplane.domain.tokens import Environment

StoredStatus = Literal["active", "inactive"]
KeyStatus = Literal["active", "inactive", "expired"]
Role = Literal["owner", "admin", "developer", "viewer"]
JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    require_explicit_scopes: bool
    max_key_lifetime_days: int | None
    created_at: datetime
    updated_at: datetime
    # Lifecycle (services/expiry.py): how long expired keys stay listed before the purge,
    # the days before an expiry that warn (largest first), and the age that calls for a
    # rotation (None: never).
    expired_key_retention_days: int = 0
    expiry_warning_days: tuple[int, ...] = (7, 1)
    rotation_period_days: int | None = None
    # Default rate limits of every key (domain/ratelimits.py: apps and keys override by name).
    ratelimits: tuple[RateLimit, ...] = ()
    # What a key reported leaked becomes (services/leaks.py): "disable" or "delete".
    leaked_key_action: LeakedKeyAction = "disable"
    # What a gateway's requests need (domain/routes.py, GET /v1/auth/nginx): ordered rules.
    route_table: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """A person who signs in: one email, one password, any number of memberships."""

    id: str
    email: str
    created_at: datetime
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class User:
    """A member of one organization: a membership (its id is the public ``usr_…`` id; the
    name and role belong to the organization) seen with its identity's email and password.

    ``pending`` while the membership still waits for its own set-password link to be used
    (see ``services/users.py``): a pending membership cannot be chosen at sign-in.
    """

    id: str
    org_id: str
    email: str
    name: str
    role: Role
    created_at: datetime
    identity_id: str
    password_hash: str | None = field(default=None, repr=False)
    pending: bool = False

    @property
    def can_sign_in(self) -> bool:
        return self.password_hash is not None and not self.pending


@dataclass(frozen=True, slots=True)
class App:
    id: str
    org_id: str
    name: str
    description: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    key_count: int = 0
    ratelimits: tuple[RateLimit, ...] = ()

    @property
    def scope_set(self) -> ScopeSet:
        return ScopeSet.of(self.scopes) if self.scopes else ScopeSet.full()


@dataclass(frozen=True, slots=True)
class Preset:
    """A named scope set to start a key or an app from: a template, copied when used (an
    app, by contrast, is a live group whose scope changes reach its keys)."""

    id: str
    org_id: str
    name: str
    description: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    org_id: str
    name: str
    description: str
    settings: JSONObject
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record. It never holds the key itself, only its keyed digest."""

    id: str
    org_id: str
    name: str
    description: str
    digest: str = field(repr=False)
    digest_version: int
    masked_key: str
    environment: Environment
    scopes: tuple[str, ...]
    app_id: str | None
    profile_id: str | None
    metadata: JSONObject
    stored_status: StoredStatus
    created_at: datetime
    created_by: str
    updated_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    rotated_from: str | None = None
    rotated_to: str | None = None
    rotated_at: datetime | None = None
    uses_since_rotation: int = 0
    # Per-key limits (domain/ratelimits.py). ``quota.remaining`` as stored: the limiter
    # spends it in memory and writes it back in batches (services/limiting.py).
    ratelimits: tuple[RateLimit, ...] = ()
    quota: Quota | None = None
    ip_allowlist: tuple[str, ...] = ()
    # Delegation (domain/delegation.py): the key that created this one with its own
    # authority (None: a root key), and the number of keys above it (0: root).
    parent_id: str | None = None
    depth: int = 0

    def status(self, now: datetime) -> KeyStatus:
        """``expired`` once ``expires_at`` has passed, whatever the stored status."""
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return self.stored_status


NoticeKind = Literal["expiring", "expired", "rotation_due"]
MailStatus = Literal["none", "pending", "sent", "failed"]


@dataclass(frozen=True, slots=True)
class KeyNotice:
    """A lifecycle notice about one key, recorded once (services/expiry.py).

    ``due_at`` is what the notice is about: the expiry it warns of or saw pass (a later,
    changed expiry gets notices of its own), or the key's creation for a rotation reminder.
    ``threshold_days`` is the warning threshold (0 for the other kinds). ``mail_status``
    tracks the email: ``none`` (no mail for this kind, or no mail server), ``pending`` (to
    be sent, retried on later rounds), ``sent``, or ``failed`` (given up after a day).
    """

    id: str
    org_id: str
    key_id: str
    kind: NoticeKind
    threshold_days: int
    due_at: datetime
    created_at: datetime
    mail_status: MailStatus = "none"
    mail_attempts: int = 0


def effective_scopes(own: tuple[str, ...], app: App | None) -> ScopeSet:
    """A key's app's scopes, narrowed by its own if it has any; otherwise its own.

    No scopes at all means full access (DESIGN.md, "Permissions").
    """
    own_set = ScopeSet.of(own) if own else None
    if app is None:
        return own_set if own_set is not None else ScopeSet.full()
    return app.scope_set if own_set is None else app.scope_set.intersect(own_set)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of an organization's audit log (domain/audit.py has the rules).

    ``actor`` is the actor's id; ``changes`` maps each changed field to
    ``{"before": …, "after": …}``. The chain fields (``seq``, ``prev_hash``, ``hash``) are
    given by the store when it appends the event, under the organization's chain lock.
    """

    id: str
    org_id: str
    actor: str
    action: str
    target_type: str
    target_id: str
    details: JSONObject
    created_at: datetime
    actor_type: str = "system"
    actor_name: str | None = None
    target_name: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    changes: JSONObject = field(default_factory=dict)
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in console user. The cookie holds a random token; only its digest is stored.

    ``user_id``/``org_id`` name the membership the session acts as; both are None between a
    password check and the choice of an organization (an identity with several memberships).
    """

    id: str
    digest: str = field(repr=False)
    identity_id: str
    user_id: str | None
    org_id: str | None
    csrf_token: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    ip: str
