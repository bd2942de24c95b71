"""The interfaces services depend on. ``storage`` and ``memory`` implement them.

Lookups named ``get``/``find_*`` return None when nothing matches; they never raise
NotFound themselves (services decide what a miss means).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from keyplane.domain.audit import AuditQuery
from keyplane.domain.catalogue import Resource
from keyplane.domain.models import (
    ApiKey,
    App,
    AuditEvent,
    ConsoleSession,
    Identity,
    KeyNotice,
    KeyStatus,
    MailStatus,
    Organization,
    Preset,
    Profile,
    Role,
    User,
)
from keyplane.domain.oauth import SigningKey
from keyplane.domain.ratelimits import Admission, Quota, RateLimit
from keyplane.domain.tokens import Environment
from keyplane.domain.usage import KeyUsage, Retention, UsagePoint, UsageRange, UsageTally
from keyplane.domain.verification import CachedKey
from keyplane.domain.webhooks import Outcome, Webhook, WebhookAttempt, WebhookMessage

Clock = Callable[[], datetime]


class OrgRepository(Protocol):
    def get(self, org_id: str) -> Organization | None: ...
    def find_by_name(self, name: str) -> Organization | None: ...
    def with_rotation_period(self) -> list[Organization]: ...
    def insert(self, org: Organization) -> None: ...
    def update(self, org: Organization) -> None: ...


class IdentityRepository(Protocol):
    """People who sign in, by email; one per address across every organization."""

    def get(self, identity_id: str) -> Identity | None: ...
    def find_by_email(self, email: str) -> Identity | None: ...
    def insert(self, identity: Identity) -> None: ...
    def set_password(self, identity_id: str, password_hash: str) -> None: ...
    def set_first_password(self, identity_id: str, password_hash: str) -> bool: ...
    def delete_if_unused(self, identity_id: str) -> bool: ...


class UserRepository(Protocol):
    """Memberships (``usr_…``), read together with their identity's email and password."""

    def get(self, org_id: str, user_id: str) -> User | None: ...
    def find_by_id(self, user_id: str) -> User | None: ...
    def find_in_org(self, org_id: str, identity_id: str) -> User | None: ...
    def of_identity(self, identity_id: str) -> list[User]: ...
    def find_owner(self, org_id: str) -> User | None: ...
    def owners(self, org_id: str) -> list[User]: ...
    def with_roles(self, org_id: str, roles: Sequence[Role]) -> list[User]: ...
    def find_by_setup_digest(self, digest: str) -> tuple[User, datetime] | None: ...
    def page(self, org_id: str, *, limit: int, after: str | None) -> list[User]: ...
    def count_owners(self, org_id: str) -> int: ...
    def insert(self, user: User) -> None: ...
    def update(self, user: User) -> None: ...
    def set_setup_token(
        self, user_id: str, digest: str | None, expires_at: datetime | None
    ) -> None: ...
    def activate(self, user_id: str) -> None: ...
    def delete(self, org_id: str, user_id: str) -> None: ...


class SessionRepository(Protocol):
    def insert(self, session: ConsoleSession) -> None: ...
    def find(self, digest: str) -> ConsoleSession | None: ...
    def bind(self, digest: str, user_id: str, org_id: str) -> None: ...
    def delete(self, digest: str) -> None: ...
    def delete_for_user(self, user_id: str) -> None: ...
    def delete_for_identity(self, identity_id: str) -> None: ...
    def delete_expired(self, now: datetime, limit: int) -> int: ...


class KeyRepository(Protocol):
    def get(self, org_id: str, key_id: str) -> ApiKey | None: ...
    def find_by_digest(self, digest: str) -> ApiKey | None: ...
    def find_by_digests(self, digests: Sequence[str]) -> list[ApiKey]: ...
    def deactivate(self, org_id: str, key_id: str, *, at: datetime) -> bool:
        """Sets an active key inactive; False when it was not active (another report, or a
        person, got there first)."""
        ...

    def page(
        self,
        org_id: str,
        *,
        now: datetime,
        limit: int,
        after: str | None,
        status: KeyStatus | None,
        app_id: str | None,
        q: str | None = None,
        environment: Environment | None = None,
        parent_id: str | None = None,
    ) -> list[ApiKey]: ...
    def children_of(self, org_id: str, parent_ids: Sequence[str]) -> list[ApiKey]:
        """The keys whose parent is one of ``parent_ids``, by id."""
        ...

    def full_access(self, org_id: str, *, now: datetime, limit: int) -> list[ApiKey]: ...
    def insert(self, key: ApiKey) -> None: ...
    def update(self, key: ApiKey) -> None: ...
    def delete(self, org_id: str, key_id: str) -> bool: ...
    def ids_with_profile(self, org_id: str, profile_id: str, limit: int) -> list[str]: ...
    def ids_in_app(self, org_id: str, app_id: str) -> list[str]: ...
    def scoped(self, org_id: str) -> list[tuple[str, tuple[str, ...]]]: ...
    def mark_rotated(
        self, org_id: str, key_id: str, *, rotated_to: str, at: datetime, expires_at: datetime
    ) -> bool: ...
    def record_last_used(self, used: Mapping[str, datetime], counts: Mapping[str, int]) -> None: ...
    def set_quota(self, org_id: str, key_id: str, quota: Quota | None) -> None: ...
    def add_quota(self, org_id: str, key_id: str, amount: int) -> None: ...
    def record_quota(self, spent: Mapping[str, QuotaSpend]) -> None: ...
    def quota(self, key_id: str) -> Quota | None: ...

    # The expiry jobs' claims: each locks what it answers (FOR UPDATE SKIP LOCKED where the
    # database has it) and leaves out keys already noticed, so every batch is new work.
    def orgs_with_expiries(self, *, after: datetime | None, until: datetime) -> list[str]: ...
    def claim_expired(
        self, org_id: str, *, now: datetime, purge_before: datetime, limit: int
    ) -> list[ApiKey]: ...
    def claim_expiring(
        self, org_id: str, *, after: datetime, until: datetime, threshold_days: int, limit: int
    ) -> list[ApiKey]: ...
    def claim_rotation_due(
        self, org_id: str, *, created_before: datetime, now: datetime, limit: int
    ) -> list[ApiKey]: ...


class NoticeRepository(Protocol):
    """Key notices (expiry warnings, expiries, rotation reminders), each recorded once."""

    def add(self, notice: KeyNotice) -> bool:
        """False when the same notice (key, kind, threshold, due time) exists already."""
        ...

    def claim_unsent(self, now: datetime, *, until: datetime, limit: int) -> list[KeyNotice]: ...
    def set_mail(
        self, notice_id: str, status: MailStatus, attempts: int, *, retry_at: datetime | None
    ) -> None: ...
    def give_up(self, created_before: datetime) -> list[KeyNotice]: ...


class AppRepository(Protocol):
    def get(self, org_id: str, app_id: str) -> App | None: ...
    def find_by_name(self, org_id: str, name: str) -> App | None: ...
    def page(self, org_id: str, *, limit: int, after: str | None) -> list[App]: ...
    def insert(self, app: App) -> None: ...
    def update(self, app: App) -> None: ...
    def delete(self, org_id: str, app_id: str) -> None: ...
    def full_access(self, org_id: str, *, limit: int) -> list[App]: ...
    def scoped(self, org_id: str) -> list[tuple[str, tuple[str, ...]]]: ...


class ProfileRepository(Protocol):
    def get(self, org_id: str, profile_id: str) -> Profile | None: ...
    def find_by_name(self, org_id: str, name: str) -> Profile | None: ...
    def page(self, org_id: str, *, limit: int, after: str | None) -> list[Profile]: ...
    def insert(self, profile: Profile) -> None: ...
    def update(self, profile: Profile) -> None: ...
    def delete(self, org_id: str, profile_id: str) -> None: ...


class PresetRepository(Protocol):
    def get(self, org_id: str, preset_id: str) -> Preset | None: ...
    def find_by_name(self, org_id: str, name: str) -> Preset | None: ...
    def page(self, org_id: str, *, limit: int, after: str | None) -> list[Preset]: ...
    def all(self, org_id: str, *, limit: int) -> list[Preset]: ...
    def insert(self, preset: Preset) -> None: ...
    def update(self, preset: Preset) -> None: ...
    def delete(self, org_id: str, preset_id: str) -> None: ...
    def scoped(self, org_id: str) -> list[tuple[str, tuple[str, ...]]]: ...


class ResourceRepository(Protocol):
    def all(self, org_id: str) -> list[Resource]: ...
    def get(self, org_id: str, name: str) -> Resource | None: ...
    def insert(self, org_id: str, resource: Resource) -> None: ...
    def update(self, org_id: str, resource: Resource) -> None: ...
    def delete(self, org_id: str, name: str) -> None: ...


class AuditRepository(Protocol):
    def append(self, event: AuditEvent) -> AuditEvent:
        """Appends to the organization's hash chain; answers the event with its chain fields."""
        ...

    def extend(self, events: Sequence[AuditEvent]) -> list[AuditEvent]:
        """``append`` for several events of one organization, in order, in one statement."""
        ...

    def page(
        self, org_id: str, query: AuditQuery, *, limit: int, after: str | None
    ) -> list[AuditEvent]: ...
    def heads(self, org_id: str | None = None) -> dict[str, tuple[int, str]]: ...
    def chain(self, org_id: str) -> Generator[AuditEvent]: ...


class WebhookRepository(Protocol):
    """Webhook endpoints, their outbox of messages and every attempt at delivering one."""

    def get(self, org_id: str, webhook_id: str) -> Webhook | None: ...
    def page(self, org_id: str, *, limit: int, after: str | None) -> list[Webhook]: ...
    def insert(self, webhook: Webhook) -> None: ...
    def update(self, webhook: Webhook) -> None: ...
    def delete(self, org_id: str, webhook_id: str) -> None: ...
    def subscribed(self, org_id: str, event_type: str) -> list[str]:
        """The enabled endpoints of the organization that receive ``event_type`` (one
        indexed query: every audited mutation asks it)."""
        ...

    def enqueue(self, messages: Sequence[WebhookMessage]) -> None: ...
    def messages(
        self, org_id: str, webhook_id: str, *, limit: int, after: str | None
    ) -> list[WebhookMessage]:
        """Newest first, each with its attempts (oldest first)."""
        ...

    def get_message(
        self, org_id: str, webhook_id: str, message_id: str
    ) -> WebhookMessage | None: ...
    def requeue(self, message_id: str, now: datetime) -> None:
        """Pending again, due now, with a fresh retry budget (a redelivery). Any lease
        ends: an attempt in flight finishes without overwriting the redelivery."""
        ...

    def any_due(self, now: datetime) -> bool:
        """Whether ``claim`` would find anything: a read, so an idle round (or one with only
        disabled endpoints' messages waiting) takes no write lock."""
        ...

    def claim(
        self, now: datetime, *, lease_until: datetime, limit: int
    ) -> list[tuple[WebhookMessage, Webhook]]:
        """Due messages of enabled endpoints, leased until ``lease_until`` (FOR UPDATE SKIP
        LOCKED on PostgreSQL): another runner skips them until then. Each message carries
        its ``lease_until``, the token ``finish`` and ``release`` check."""
        ...

    def finish(
        self,
        attempt: WebhookAttempt,
        *,
        lease_until: datetime,
        status: str,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Records an attempt and, while the message is still leased until ``lease_until``
        (the claim's), what it made of it, releasing the lease; whether it was. A message
        redelivered during the attempt (``requeue`` ended the lease) keeps its new state:
        only the attempt is recorded. Nothing, when the message is gone (its webhook was
        deleted during the attempt)."""
        ...

    def release(self, message_ids: Sequence[str], lease_until: datetime) -> None:
        """Ends the lease of claimed messages not attempted, if still theirs: due again at
        the next round."""
        ...

    def set_failing(self, webhook_id: str, since: datetime | None) -> None:
        """Marks the endpoint failing since ``since`` (kept if already failing), or healthy."""
        ...

    def notices_due(self, limit: int) -> list[Webhook]:
        """Endpoints the job disabled whose owners are not yet emailed."""
        ...

    def claim_notice(self, webhook_id: str) -> bool:
        """Clears the endpoint's notice flag; whether this call did (one runner of several
        wins, and only it emails)."""
        ...

    def restore_notice(self, webhook_id: str) -> None:
        """Sets the flag again after the email failed, while the endpoint is disabled."""
        ...


class Invalidations(Protocol):
    """What a unit of work changed that cached verification records depend on.

    Services record it inside the transaction, beside the change and its audit event
    (never "after commit" from memory, where a crash or an exception between commit and
    the call would lose it). The store applies it to this process's KeyCache when the
    transaction commits and, on PostgreSQL, sends it to every other node with NOTIFY in
    the same transaction, so it arrives exactly when the change commits and never for a
    rolled-back one (storage/invalidations.py).

    Name the organization the object belongs to: the event stream (services/events.py)
    tells each organization only of its own changes, and a notice without one makes it
    tell every subscriber to drop everything.
    """

    def key(self, key_id: str, org_id: str | None = None) -> None: ...
    def app(self, app_id: str, org_id: str | None = None) -> None: ...
    def profile(self, profile_id: str, org_id: str | None = None) -> None: ...
    def org(self, org_id: str) -> None: ...
    def signing_keys(self) -> None:
        """The token signing keys changed (a rotation): every node reloads its Keyring."""
        ...


class SigningKeyRepository(Protocol):
    """The instance's token signing keys (domain/oauth.py SigningKey)."""

    def live(self) -> list[SigningKey]:
        """The current key and the previous ones: what signs and verifies tokens."""
        ...

    def all(self) -> list[SigningKey]: ...
    def insert(self, key: SigningKey) -> None:
        """A second ``current`` key is a Conflict (another node's concurrent first start)."""
        ...

    def demote_current(self, now: datetime) -> str | None:
        """The current key becomes previous (its kid; None when there was none)."""
        ...

    def retire_previous(self, rotated_before: datetime) -> list[str]:
        """Previous keys that stopped signing before then leave the JWKS (their kids)."""
        ...


class Transaction(Protocol):
    """One unit of work: everything done through it commits or rolls back together."""

    @property
    def orgs(self) -> OrgRepository: ...
    @property
    def identities(self) -> IdentityRepository: ...
    @property
    def users(self) -> UserRepository: ...
    @property
    def keys(self) -> KeyRepository: ...
    @property
    def apps(self) -> AppRepository: ...
    @property
    def profiles(self) -> ProfileRepository: ...
    @property
    def presets(self) -> PresetRepository: ...
    @property
    def resources(self) -> ResourceRepository: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def notices(self) -> NoticeRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...
    @property
    def signing_keys(self) -> SigningKeyRepository: ...
    @property
    def invalidations(self) -> Invalidations: ...


class Store(Protocol):
    """Units of work. Both raise StorageUnavailable when the database fails them.

    ``transaction()`` writes (and may read); ``read()`` only reads and never waits for a
    writer (on SQLite it runs beside one; on PostgreSQL it is READ ONLY). A write inside
    ``read()`` is refused by the database: it is a bug, never a fallback.
    """

    def transaction(self) -> AbstractContextManager[Transaction]: ...
    def read(self) -> AbstractContextManager[Transaction]: ...


class KeyCache(Protocol):
    """Verification records by key digest, with a bounded memory of digests known not to exist.

    A fill races with invalidation: read ``generation()`` before loading from the store and
    pass it to ``put``; a put whose generation is stale is dropped, so an invalidation that
    happened during the load is never undone by it.
    """

    def get(self, digest: str) -> CachedKey | None: ...
    def get_by_key_id(self, key_id: str) -> CachedKey | None:
        """The record of a key by its id (an access token names its key by id)."""
        ...

    def known_missing(self, digest: str) -> bool: ...
    def generation(self) -> int: ...
    def put(self, digest: str, entry: CachedKey, generation: int) -> None: ...
    def put_missing(self, digest: str, generation: int) -> None: ...
    def invalidate_key(self, key_id: str) -> None: ...
    def invalidate_app(self, app_id: str) -> None: ...
    def invalidate_profile(self, profile_id: str) -> None: ...
    def invalidate_org(self, org_id: str) -> None: ...
    def clear(self) -> None:
        """Forgets everything (a lost invalidation listener: what it missed is unknown)."""
        ...


class Keyring(Protocol):
    """The token signing keys as this process holds them: signs with the current one,
    verifies with the current and previous ones (jose.py). Loaded from the store; reloaded
    on a ``signing_keys`` invalidation notice and after the cache TTL. ``load`` reads the
    database: an event loop asks ``needs_load`` first and loads in a thread."""

    def needs_load(self) -> bool: ...
    def load(self) -> None: ...
    def invalidate(self) -> None: ...
    def new_key(self, now: datetime) -> SigningKey:
        """A new key pair, its private key sealed under the server secret."""
        ...

    def sign(self, claims: Mapping[str, object]) -> str:
        """A compact JWS of ``claims``, with the current key's ``kid`` in its header."""
        ...

    def read(self, token: str) -> Mapping[str, object] | None:
        """The claims of a token this instance signed and that has not expired; None for
        anything else (a bad signature, an unknown kid, a missing claim, garbage)."""
        ...

    def jwks(self) -> dict[str, object]:
        """The public keys of the current and previous signing keys, as a JWK Set."""


class InvalidationFeed(Protocol):
    """Where committed invalidation notices go besides the KeyCache: the event stream of
    this process (services/events.py). Called from any thread; never blocks."""

    def published(self, notices: Sequence[str]) -> None:
        """Notices of committed changes, in commit order."""
        ...

    def gap(self) -> None:
        """Notices may have been missed (a listener lost its connection): whoever kept
        anything on the strength of this feed must drop it."""
        ...


class InvalidationListener(Protocol):
    """Applies other processes' invalidation notices to this process's KeyCache, from a
    thread of its own between ``start`` and ``stop`` (PostgreSQL: LISTEN)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


class Metrics(Protocol):
    """What operators watch (GET /metrics when KEYPLANE_METRICS=true; otherwise each call
    does nothing). Labels are bounded sets chosen here, never a key, a digest, an
    organization or anything a client sends."""

    def verified(self, code: str, seconds: float) -> None:
        """One verification answered ``code`` (domain.verification.Code) in ``seconds``."""
        ...

    def authenticated(self, code: str) -> None:
        """A call to keyplane's own API made with a key: ``code`` is what that key's
        verification said (VALID when the call went ahead; NOT_FOUND, EXPIRED, DISABLED,
        IP_FORBIDDEN, RATE_LIMITED or USAGE_EXCEEDED when it was refused)."""
        ...

    def cache_lookup(self, hit: bool) -> None:
        """A verification record was found in the KeyCache (or had to be loaded)."""
        ...

    def invalidation_received(self, lag_seconds: float | None) -> None:
        """Another process's invalidation notice arrived, ``lag_seconds`` after its commit
        (None: unknown, e.g. a notice without a timestamp or a whole-cache drop)."""
        ...

    def redis_error(self, operation: str) -> None:
        """A Redis call failed (``operation``: "admit", "quota", "forget", …)."""
        ...

    def limits_unavailable(self, kind: str, decision: str) -> None:
        """Redis was unreachable for a verification: ``kind`` "ratelimit" or "quota",
        ``decision`` "open" (admitted unchecked) or "closed" (refused)."""
        ...

    def job_ran(self, job: str, outcome: str) -> None:
        """A background job's round ended: ``outcome`` "ok" or "error"."""
        ...

    def webhook_delivery(self, result: str) -> None:
        """A delivery attempt ended: "delivered", "failed" (will retry) or "gave_up"."""
        ...

    def leak_report(self, outcome: str) -> None:
        """A report of leaked keys ended: "accepted", "rate_limited", "signature_refused"
        or "keys_unavailable" (GitHub's keys could not be fetched); and per key acted on,
        "revoked"."""
        ...


class PartnerKeys(Protocol):
    """A partner's published signing keys (GitHub secret scanning), fetched and cached.

    ``verify`` returns when ``signature`` (base64 DER ECDSA) by the key named
    ``identifier`` holds over ``body``; otherwise it raises SignatureRefused, or
    PartnerKeysUnavailable when the keys cannot be had. It may wait on the network: call
    it off the event loop.
    """

    def verify(self, identifier: str | None, signature: str | None, body: bytes) -> None: ...


# Per key: spent since the last batch (or since the refill), the refill instant applied in
# memory since the last batch (None: none), and that refill's amount.
QuotaSpend = tuple[int, datetime | None, int]


class RateLimiter(Protocol):
    """Checks a key's rate limits and quota and, only when all admit, spends them all: one
    atomic step per verification (domain/ratelimits.py has the algorithm).

    A refused call spends nothing. ``cost`` 0 answers as a cost of 1 would, spending
    nothing. ``quota`` is the key's quota as stored when its record was loaded: the limiter
    starts from it the first time it sees the key and keeps its own count after that (the
    in-process one in memory, written back through a LimitStore; a Redis one in Redis, one
    script covering every limit and the quota, seeded from ``quota`` with SET NX).
    """

    # True when ``admit`` may wait on the network (Redis): an event loop then awaits
    # ``admit_async``. False: ``admit`` only takes a lock in memory; call it inline.
    blocking: bool

    def admit(
        self,
        key_id: str,
        limits: tuple[RateLimit, ...],
        quota: Quota | None,
        cost: int,
        now: datetime,
    ) -> Admission: ...

    async def admit_async(
        self,
        key_id: str,
        limits: tuple[RateLimit, ...],
        quota: Quota | None,
        cost: int,
        now: datetime,
    ) -> Admission:
        """``admit`` for an event loop: a remote limiter waits without holding a thread."""
        ...

    def quota_set(self, key_id: str, quota: Quota | None) -> None:
        """After a committed change that replaced the key's quota (None: removed it)."""
        ...

    def quota_add(self, key_id: str, amount: int) -> None:
        """After a committed change that added ``amount`` to the key's count."""
        ...

    def forget(self, key_id: str) -> None:
        """The key is gone: drop its state."""
        ...


class BackgroundRateLimiter(RateLimiter, Protocol):
    """A RateLimiter that writes quota counts back from a thread between start and stop."""

    def start(self) -> None: ...
    def flush(self) -> None: ...
    def stop(self) -> None: ...


class LimitsGuard(Protocol):
    """Keeps rate limits and quotas exact when a RateLimiter counts in process memory.

    Such a limiter is exact for one process only: two processes each admitting a key's
    100 a minute admit 200. So limits and several processes exclude each other: a process
    that starts keeping limits in memory ``join``s, and is refused while another one lives
    and any limit exists; a change giving a key, app or organization a limit or quota asks
    ``limits_added`` in its own transaction, and is refused while more than one lives.
    Where counts are shared (Redis) or one process is all there can be (SQLite), nothing
    is guarded.
    """

    def join(self, processes: int = 1) -> None:
        """This process keeps limits in memory from now on (``processes``: how many it will
        start, as `serve --workers N` does). Raises LimitsNeedRedis when limits exist and
        another such process is live or ``processes`` > 1. Idempotent."""
        ...

    def leave(self) -> None: ...

    def limits_added(self, tx: Transaction, field: str) -> None:
        """Inside the transaction that gives something a limit or quota (``field`` names
        it). Raises LimitsNeedRedis when more than one process keeps limits in memory."""
        ...


class LimitStore(Protocol):
    """Where an in-process RateLimiter persists quota counts, in batches off the request
    path (so they survive a restart): per key, spent amounts subtracted and refills applied
    (KeyRepository.record_quota explains the arithmetic)."""

    def record_quota(self, spent: Mapping[str, QuotaSpend]) -> None: ...

    def stored_quota(self, key_id: str) -> Quota | None:
        """The key's quota as the database has it now (None: no quota, or no such key), for
        a shared limiter seeding a count it does not hold."""
        ...


class UsageRecorder(Protocol):
    """Takes last-used times and use counts off the request path; an implementation writes
    them in batches (the counts feed a rotated key's verifications since its rotation)."""

    def touch(self, key_id: str, at: datetime) -> None: ...


class BackgroundUsageRecorder(UsageRecorder, Protocol):
    """A UsageRecorder that writes from a background thread between ``start`` and ``stop``."""

    def start(self) -> None: ...
    def flush(self) -> None: ...
    def stop(self) -> None: ...


class UsageCounter(Protocol):
    """Counts answers per key, per minute, per outcome, off the request path.

    ``key`` is None for a NOT_FOUND answer about no key of ``org_id``: it counts in the
    asking organization, against no key.
    """

    def count(self, org_id: str, key: CachedKey | None, outcome: str, at: datetime) -> None: ...


class BackgroundUsageCounter(UsageCounter, Protocol):
    """A UsageCounter that writes from a background thread between ``start`` and ``stop``."""

    def start(self) -> None: ...
    def flush(self) -> None: ...
    def stop(self) -> None: ...


class UsageRepository(Protocol):
    """Usage counts at rest. Each method is its own unit of work (usage is not part of the
    changes a Transaction groups); all raise StorageUnavailable when the database fails."""

    def add(self, tallies: Sequence[UsageTally]) -> None:
        """Adds the tallies to their minute, hour and day rows (an upsert adding counts)."""

    def apply_retention(self, retention: Retention, now: datetime) -> int:
        """Deletes rows past their granularity's retention; the number deleted. Idempotent."""
        ...

    def series(
        self, org_id: str, span: UsageRange, *, key_id: str | None, app_id: str | None
    ) -> list[UsagePoint]:
        """Counts per bucket start and outcome, only the buckets that have any."""
        ...

    def top_keys(self, org_id: str, span: UsageRange, limit: int) -> list[KeyUsage]: ...


class Job(Protocol):
    """A background job (``keyplane.jobs.JobRunner`` runs it on a thread of its own).

    Idempotent, and safe with several runners on one database at once (``keyplane serve``
    on several nodes, ``keyplane worker``): it claims what it works on (``FOR UPDATE SKIP
    LOCKED`` on PostgreSQL; SQLite's write lock serialises runners) and a second run finds
    nothing left to do. ``run`` does one round and answers how many items it handled.
    """

    @property
    def name(self) -> str: ...

    @property
    def interval(self) -> float | None:
        """Seconds between rounds; None: ``KEYPLANE_JOBS_INTERVAL_SECONDS``."""
        ...

    def run(self, now: datetime) -> int: ...


class Mailer(Protocol):
    """Sends plain-text email (SMTP when ``KEYPLANE_SMTP_URL`` is set). ``send`` runs on a job
    thread, never on the event loop; it raises MailUnavailable when the message was not
    accepted, so the caller can try again on its next round."""

    @property
    def enabled(self) -> bool: ...

    def send(self, to: Sequence[str], subject: str, text: str) -> None: ...


class WebhookSender(Protocol):
    """Sends one webhook request (keyplane/outbound.py: httpx, no redirects, a 10 s timeout,
    connecting only to addresses checked after DNS). Never raises for the endpoint's
    failures: a refused address, a timeout or a 500 is an Outcome to record."""

    def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome: ...


class PasswordHasher(Protocol):
    """Slow, salted password hashing (argon2id): the opposite of key digests."""

    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool: ...


class AttemptLimiter(Protocol):
    """Slows down repeated failures per subject (an account, an address)."""

    def retry_after(self, subjects: list[str], now: float) -> float: ...
    def failed(self, subjects: list[str], now: float) -> None: ...
    def succeeded(self, subjects: list[str]) -> None: ...
