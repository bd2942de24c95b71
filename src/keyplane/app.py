"""Wiring: the only place that picks implementations.

``build(settings)`` assembles the services (the CLI uses it too); ``create_app(settings)``
puts the HTTP layer on top.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial

import redis
from fastapi import FastAPI
from sqlalchemy import Engine

from keyplane import __version__
from keyplane.container import Keyplane
from keyplane.domain.invalidation import apply_all
from keyplane.domain.ports import (
    BackgroundRateLimiter,
    BackgroundUsageCounter,
    Clock,
    InvalidationListener,
    Job,
    LimitsGuard,
    Mailer,
    Metrics,
)
from keyplane.domain.tokens import KeyHasher
from keyplane.domain.usage import Retention
from keyplane.jobs import JobRunner
from keyplane.jose import Sealer, SqlKeyring
from keyplane.mail import NullMailer, SmtpMailer, SmtpTarget
from keyplane.memory import (
    BufferedUsageRecorder,
    InProcessAttemptLimiter,
    InProcessKeyCache,
    InProcessRateLimiter,
    NullLimitsGuard,
)
from keyplane.metrics import NullMetrics, PrometheusMetrics
from keyplane.outbound import HttpFetcher, HttpWebhookSender
from keyplane.partners import GithubKeys
from keyplane.passwords import Argon2Passwords
from keyplane.redisclient import PipelinedRedis
from keyplane.redislimits import RedisFailurePolicy, RedisRateLimiter
from keyplane.services.analytics import AnalyticsService, UsageRetentionJob
from keyplane.services.apps import AppService
from keyplane.services.auditing import AuditService
from keyplane.services.children import ChildKeyService
from keyplane.services.delivery import WebhookDeliveryJob
from keyplane.services.events import InvalidationEvents
from keyplane.services.expiry import ExpiryJob, NoticeJob
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
from keyplane.settings import ConfigurationError, Settings
from keyplane.storage.engine import is_sqlite, make_engine, migrate
from keyplane.storage.instance import claim_secret_check
from keyplane.storage.limitsguard import PostgresLimitsGuard
from keyplane.storage.listener import PostgresInvalidationListener
from keyplane.storage.store import SqlStore
from keyplane.storage.usage import SqlUsageRepository
from keyplane.usage import BufferedUsageCounter, NullUsageCounter

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build(settings: Settings, *, clock: Clock = utc_now, run_migrations: bool = True) -> Keyplane:
    pepper = settings.pepper()  # first: a configuration error beats a connection
    hasher = KeyHasher(pepper)
    engine = make_engine(settings.database_url)
    if run_migrations:
        migrate(engine)
    _check_secret(settings, hasher, engine)
    metrics: Metrics = PrometheusMetrics() if settings.metrics else NullMetrics()
    cache = InProcessKeyCache(max_entries=settings.cache_max_entries)
    events = InvalidationEvents()
    # The keyring is made below, with the store it reads: the lambda finds it at call time.
    store = SqlStore(
        engine,
        committed=_committed(settings, cache, events, lambda: keyring.invalidate()),  # noqa: PLW0108 (keyring is made below)
    )
    keyring = SqlKeyring(
        store,
        Sealer(pepper),
        clock,
        issuer=settings.token_issuer,
        ttl=timedelta(seconds=settings.cache_ttl_seconds),
    )
    signing = SigningKeyService(store, keyring, clock)
    if run_migrations:
        signing.ensure()
    usage = BufferedUsageRecorder(store.record_last_used, interval=settings.usage_flush_interval)
    usage_counts = SqlUsageRepository(engine)
    counter = _usage_counter(settings, usage_counts, clock)
    mailer = _mailer(settings)
    sender = HttpWebhookSender(allow_private=settings.webhooks_allow_private)
    jobs: list[Job] = [
        _usage_retention(settings, usage_counts),
        ExpiryJob(store, scrub=store.scrub),
        NoticeJob(store, mailer),
        WebhookDeliveryJob(
            store,
            hasher,
            sender,
            mailer,
            stamp=utc_now,
            interval=settings.webhooks_delivery_interval,
            metrics=metrics,
        ),
    ]
    limiter, close_limiter, aclose_limiter = _limiter(settings, store, clock, metrics)
    guard = _limits_guard(settings)
    keys = KeyService(store, hasher, clock, limiter, guard)
    passwords = Argon2Passwords()
    # services/signin.py explains the three counts and their numbers; set-password links
    # share the per-account one (services/users.py).
    accounts = InProcessAttemptLimiter(free=50)
    # Reloads of records past the cache TTL (services/verifying.py), off the request path.
    revalidation = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyplane-revalidate")
    # Leak reports, handled after their answer, one at a time (services/leaks.py).
    leak_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyplane-leaks")
    # GitHub's secret-scanning keys: an operator's URL, so private addresses are allowed
    # (link-local and metadata ones never are: outbound.py).
    fetcher = HttpFetcher(allow_private=True)
    verifier = Verifier(
        store,
        hasher,
        cache,
        clock,
        usage,
        counter,
        limiter,
        ttl=timedelta(seconds=settings.cache_ttl_seconds),
        background=revalidation.submit,
        metrics=metrics,
    )
    return Keyplane(
        settings=settings,
        clock=clock,
        store=store,
        cache=cache,
        usage=usage,
        counter=counter,
        keys=keys,
        rotation=RotationService(store, keys, clock),
        children=ChildKeyService(
            store,
            hasher,
            clock,
            keys,
            max_depth=settings.max_key_depth,
            limiter=limiter,
            guard=guard,
        ),
        apps=AppService(store, clock, guard),
        profiles=ProfileService(store, clock),
        presets=PresetService(store, clock),
        resources=ResourceService(store, clock),
        orgs=OrgService(store, keys, clock, guard),
        verifier=verifier,
        tokens=TokenService(
            verifier,
            keyring,
            clock,
            lifetime=timedelta(seconds=settings.token_lifetime_seconds),
        ),
        signing=signing,
        analytics=AnalyticsService(store, usage_counts, clock),
        users=UserService(store, passwords, clock, accounts, time.monotonic),
        signin=SignInService(
            store,
            passwords,
            pairs=InProcessAttemptLimiter(free=5),
            accounts=accounts,
            addresses=InProcessAttemptLimiter(free=20),
            clock=clock,
            monotonic=time.monotonic,
        ),
        audit=AuditService(store),
        webhooks=WebhookService(
            store, hasher, clock, allow_private=settings.webhooks_allow_private
        ),
        leaks=LeakService(
            store, hasher, clock, mailer, metrics, background=leak_worker.submit, limiter=limiter
        ),
        github=GithubKeys(
            settings.github_keys_url,
            fetcher.get,
            metrics,
            ttl=settings.github_keys_ttl_seconds,
            refetch_after=settings.github_keys_refetch_seconds,
        ),
        mailer=mailer,
        jobs=JobRunner(jobs, clock=clock, interval=settings.jobs_interval_seconds, metrics=metrics),
        limiter=limiter,
        metrics=metrics,
        async_closers=[aclose_limiter] if aclose_limiter else [],
        guard=guard,
        closers=[
            # Reports already answered are handled before anything they use goes.
            leak_worker.shutdown,
            *([metrics.close] if isinstance(metrics, PrometheusMetrics) else []),
            partial(revalidation.shutdown, cancel_futures=True),
            fetcher.close,
            passwords.close,
            sender.close,
            close_limiter,
            engine.dispose,
        ],
        listener=_listener(settings, cache, metrics, events, keyring),
        events=events,
    )


def _committed(
    settings: Settings,
    cache: InProcessKeyCache,
    events: InvalidationEvents,
    signing: Callable[[], None],
) -> Callable[[Sequence[str]], None]:
    """What this process does with its own committed notices: its cache forgets at once
    (the answer to a change already reflects it). The event stream hears them here on
    SQLite only; on PostgreSQL the listener delivers them to it with every other node's,
    in one commit order, and a lost listener is the stream's gap (storage/listener.py)."""
    if not is_sqlite(settings.database_url):
        return lambda notices: apply_all(cache, notices, signing)

    def committed(notices: Sequence[str]) -> None:
        apply_all(cache, notices, signing)
        events.published(notices)

    return committed


def _limiter(
    settings: Settings, store: SqlStore, clock: Clock, metrics: Metrics
) -> tuple[BackgroundRateLimiter, Callable[[], None], Callable[[], Awaitable[None]] | None]:
    """Rate limits and quotas: in this process (exact for one process), or in Redis when
    KEYPLANE_REDIS_URL is set (exact across nodes). Quota counts are written back to the
    database in batches like last-used times either way.

    An unreachable Redis at start is logged, not fatal: a node restarted during a Redis
    blip should serve what KEYPLANE_REDIS_FAILURE allows, like its running peers do, rather
    than stay down. A URL that is not one is a ConfigurationError."""
    interval = settings.usage_flush_interval
    if settings.redis_url is None:
        return InProcessRateLimiter(store.record_quota, clock, interval=interval), _nothing, None
    try:
        # Short timeouts: a verification must not wait long on a sick Redis (the failure
        # policy answers instead, and skips Redis for a second after a failure).
        url = settings.redis_url.get_secret_value()
        client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        # The verify route awaits its checks on the event loop (api/routes/verify.py).
        async_client = PipelinedRedis(url, connect_timeout=0.5)
    except ValueError as exc:
        raise ConfigurationError(f"KEYPLANE_REDIS_URL: {exc}") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        log.warning(
            "Redis at KEYPLANE_REDIS_URL is not reachable (%s); starting anyway, limits "
            "follow KEYPLANE_REDIS_FAILURE until it is",
            type(exc).__name__,
        )
    policy = RedisFailurePolicy(settings.redis_failure, metrics)
    limiter = RedisRateLimiter(
        client,
        store.stored_quota,
        store.record_quota,
        policy,
        prefix=settings.redis_prefix,
        interval=interval,
        async_client=async_client,
    )
    return limiter, client.close, async_client.aclose


def _nothing() -> None:
    pass


def _limits_guard(settings: Settings) -> LimitsGuard:
    """Rate limits and quotas counted in this process's memory are exact only while one
    process keeps them (domain/ports.py LimitsGuard). On PostgreSQL without Redis several
    processes can serve one database, so they are counted (storage/limitsguard.py) and
    limits refused while there are several; never silently inexact. With Redis the counts
    are shared; on SQLite one process is all `serve` runs.
    """
    if settings.redis_url is not None or is_sqlite(settings.database_url):
        return NullLimitsGuard()
    return PostgresLimitsGuard(settings.database_url)


def _listener(
    settings: Settings,
    cache: InProcessKeyCache,
    metrics: Metrics,
    events: InvalidationEvents,
    keyring: SqlKeyring,
) -> InvalidationListener | None:
    """How other processes' changes reach this one's cache.

    PostgreSQL LISTEN/NOTIFY, also when KEYPLANE_REDIS_URL is set: the notice is sent
    inside the changing transaction, so it is delivered exactly when the change commits
    and never for a rollback; a Redis PUBLISH can only happen before COMMIT (announcing
    what may roll back) or after it (lost if this process dies in between).
    SQLite has no NOTIFY and serves one process (`serve --workers` refuses more): its
    store applies each commit's notices to this cache itself (SqlStore).
    """
    if is_sqlite(settings.database_url):
        return None
    return PostgresInvalidationListener(
        settings.database_url, cache, metrics, signing=keyring.invalidate, feed=events
    )


def _usage_counter(
    settings: Settings, repository: SqlUsageRepository, clock: Clock
) -> BackgroundUsageCounter:
    if not settings.usage_counting:
        return NullUsageCounter()
    return BufferedUsageCounter(repository.add, clock=clock, interval=settings.usage_flush_interval)


def _mailer(settings: Settings) -> Mailer:
    if settings.smtp_url is None:
        return NullMailer()
    try:
        target = SmtpTarget.parse(settings.smtp_url.get_secret_value())
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    return SmtpMailer(target, settings.smtp_from)


def _usage_retention(settings: Settings, repository: SqlUsageRepository) -> Job:
    retention = Retention(
        minute=timedelta(days=settings.usage_minute_retention_days),
        hour=timedelta(days=settings.usage_hour_retention_days),
        day=timedelta(days=settings.usage_day_retention_days),
    )
    return UsageRetentionJob(repository, retention, settings.usage_retention_interval)


def _check_secret(settings: Settings, hasher: KeyHasher, engine: Engine) -> None:
    """Refuse to start with another secret than the one this database was created with:
    every key would answer NOT_FOUND, and nothing else would say why."""
    expected = hasher.secret_check()
    if hmac.compare_digest(claim_secret_check(engine, expected), expected):
        return
    engine.dispose()
    raise ConfigurationError(
        "the key-hashing secret differs from the one this database was created with: no "
        "existing API key would verify (each would answer NOT_FOUND), so keyplane refuses to "
        f"start. The secret now comes from {settings.secret_source()}. Start with the original "
        "secret: set KEYPLANE_SECRET_KEY (or KEYPLANE_SECRET_KEY_FILE) to it, or restore the "
        "generated secret file that was beside the SQLite database."
    )


def create_app(settings: Settings | None = None, *, keyplane: Keyplane | None = None) -> FastAPI:
    # The web layers are imported only when serving: the CLI's other commands skip them.
    from keyplane.api import install
    from keyplane.api.middleware import TrustedProxies
    from keyplane.api.routes.metrics import install_metrics
    from keyplane.console import install_console

    kp = keyplane if keyplane is not None else build(settings or Settings())
    config = kp.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("security settings: %s", security_summary(config))
        kp.start(jobs=config.run_jobs, listen=True)
        try:
            yield
        finally:
            for closer in kp.async_closers:
                await closer()
            kp.close()

    app = FastAPI(
        title="keyplane",
        version=__version__,
        summary="Issue, scope, verify, rotate, expire, revoke and audit API keys.",
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry probes the global providers on every request
        # (measured: a visible share of a verification); keyplane wires its own metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # In production the interactive pages are opt-in (KEYPLANE_DOCS=true); the OpenAPI
        # document itself stays: clients and gateways generate code from it.
        docs_url="/docs" if config.docs_enabled else None,
        redoc_url="/redoc" if config.docs_enabled else None,
    )
    app.state.keyplane = kp
    install(app)
    install_console(app)
    if isinstance(kp.metrics, PrometheusMetrics):
        install_metrics(app, kp.metrics.exposition, kp.metrics.content_type, config.metrics_token)
    # Outermost, so that every guard, throttle and audit record sees the real client.
    app.add_middleware(TrustedProxies, trusted=config.trusted_proxies)
    return app


def security_summary(settings: Settings) -> str:
    """The effective security settings, one line for the startup log (no secret values)."""
    proxies = ", ".join(str(n) for n in settings.trusted_proxies) or "none"
    return (
        f"env={settings.env}; secret from {settings.secret_source()}; "
        f"secure cookies {'on' if settings.secure_cookies else 'OFF'}; "
        f"trusted proxies: {proxies}; interactive docs {'on' if settings.docs_enabled else 'off'}"
    )
