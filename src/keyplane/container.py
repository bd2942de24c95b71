"""The assembled services of one process, typed by the ports they are built on.

``keyplane.app`` fills it with implementations (SQL store, in-process cache, argon2); the
web layers and the CLI read it and never learn which implementations they got.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from keyplane.domain.ports import (
    BackgroundRateLimiter,
    BackgroundUsageCounter,
    BackgroundUsageRecorder,
    Clock,
    InvalidationListener,
    KeyCache,
    LimitsGuard,
    Mailer,
    Metrics,
    PartnerKeys,
    Store,
)
from keyplane.jobs import JobRunner
from keyplane.services.analytics import AnalyticsService
from keyplane.services.apps import AppService
from keyplane.services.auditing import AuditService
from keyplane.services.children import ChildKeyService
from keyplane.services.events import InvalidationEvents
from keyplane.services.keys import KeyService
from keyplane.services.leaks import LeakService
from keyplane.services.orgs import OrgService
from keyplane.services.presets import PresetService
from keyplane.services.profiles import ProfileService
from keyplane.services.resources import ResourceService
from keyplane.services.rotation import RotationService
from keyplane.services.signin import SignInService
from keyplane.services.signing import SigningKeyService
from keyplane.services.tokens import TokenService
from keyplane.services.users import UserService
from keyplane.services.verifying import Verifier
from keyplane.services.webhooks import WebhookService
from keyplane.settings import Settings


@dataclass
class Keyplane:
    settings: Settings
    clock: Clock
    store: Store
    cache: KeyCache
    usage: BackgroundUsageRecorder
    counter: BackgroundUsageCounter
    keys: KeyService
    rotation: RotationService
    children: ChildKeyService
    apps: AppService
    profiles: ProfileService
    presets: PresetService
    resources: ResourceService
    orgs: OrgService
    verifier: Verifier
    users: UserService
    signin: SignInService
    analytics: AnalyticsService
    audit: AuditService
    webhooks: WebhookService
    # Keys reported leaked (POST /v1/keys/leaked, GitHub secret scanning), and GitHub's
    # signing keys that reports from it must verify against.
    leaks: LeakService
    github: PartnerKeys
    mailer: Mailer
    # The lifecycle jobs; started by `serve` (unless KEYPLANE_RUN_JOBS=false) and `worker`.
    jobs: JobRunner
    # Per-key rate limits and quotas (domain/ports.py RateLimiter); its batches run between
    # start and close.
    limiter: BackgroundRateLimiter
    # What operators watch (GET /metrics); a no-op unless KEYPLANE_METRICS=true.
    metrics: Metrics
    # Keeps in-memory limits exact (domain/ports.py LimitsGuard): joined by every serving
    # process (start(listen=True), and `serve` before it forks its workers).
    guard: LimitsGuard
    # OAuth access tokens for keys (services/tokens.py) and the keys that sign them.
    tokens: TokenService
    signing: SigningKeyService
    # Run once, in order, by close(): stop background threads before the pool they use.
    closers: list[Callable[[], None]] = field(default_factory=list)
    # Run by the ASGI app's shutdown, on its event loop (clients bound to that loop).
    async_closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Other processes' cache invalidations (PostgreSQL); None on SQLite, where this process
    # is the only one that changes anything. Started by `serve`, not by `worker`: a worker
    # verifies nothing, so its cache is never read.
    listener: InvalidationListener | None = None
    # GET /v1/events/stream: the invalidation notices this process hears, for clients that
    # cache verdicts (services/events.py).
    events: InvalidationEvents = field(default_factory=InvalidationEvents)

    def start(self, *, jobs: bool = False, listen: bool = False) -> None:
        if listen:
            self.guard.join()  # first: a refusal leaves nothing running
        if listen and self.listener is not None:
            self.listener.start()
        self.usage.start()
        self.counter.start()
        self.limiter.start()
        if jobs:
            self.jobs.start()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.guard.leave()
        self.jobs.stop()
        self.usage.stop()
        self.counter.stop()
        self.limiter.stop()
        for closer in self.closers:
            closer()
        self.closers.clear()
