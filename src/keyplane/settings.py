"""Configuration from ``KEYPLANE_*`` environment variables, read once."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from keyplane.storage.engine import is_sqlite, sqlite_path

log = logging.getLogger(__name__)


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigurationError(RuntimeError):
    """Settings that cannot work; the message says what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEYPLANE_", extra="ignore")

    database_url: str = "sqlite:///keyplane.db"
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    usage_flush_interval: float = Field(default=1.0, gt=0)
    # Usage analytics (domain/usage.py): counting on the hot path can be turned off (the
    # benchmark's baseline, or a deployment that wants no analytics); read once at build.
    usage_counting: bool = True
    usage_minute_retention_days: int = Field(default=7, ge=1)
    usage_hour_retention_days: int = Field(default=90, ge=1)
    usage_day_retention_days: int = Field(default=730, ge=1)
    usage_retention_interval: float = Field(default=3600.0, gt=0)  # seconds between runs
    cache_max_entries: int = Field(default=100_000, ge=1)
    # Seconds after which a cached verification record is read again from the database
    # (in the background: the request that finds it stale is answered from it). The last
    # safety net behind invalidation notices (services/verifying.py says how stale).
    cache_ttl_seconds: float = Field(default=30.0, gt=0)
    # Delegated keys (services/children.py): how deep a chain of keys creating children
    # may go. A root key is depth 0, its child 1, a grandchild 2; 0 turns delegation off.
    max_key_depth: int = Field(default=2, ge=0, le=10)
    # GET /v1/events/stream: a comment line after this many seconds of silence (proxies close
    # idle connections), and the longest a stream lasts before the server ends it (the
    # client reconnects with Last-Event-ID and misses nothing; its key is checked again).
    events_heartbeat_seconds: float = Field(default=15.0, gt=0)
    events_stream_max_seconds: float = Field(default=600.0, gt=0)
    # Background jobs (keyplane/jobs.py): seconds between rounds, and whether `serve` runs
    # them too (false when `keyplane worker` processes run them instead).
    jobs_interval_seconds: float = Field(default=30.0, gt=0)
    run_jobs: bool = True
    # Outbound email (expiry warnings, rotation reminders, disabled webhooks), e.g.
    # smtp://user:pass@host:587?starttls=true. None: no email is sent.
    smtp_url: SecretStr | None = None
    smtp_from: str = "keyplane@localhost"
    # Webhook targets on private and loopback networks (link-local and cloud metadata
    # addresses are refused whatever this says).
    webhooks_allow_private: bool = True
    # Seconds between rounds of the webhook delivery job (its first attempt at a message
    # follows the change within about this long).
    webhooks_delivery_interval: float = Field(default=1.0, gt=0)
    # Leak reports (POST /v1/keys/leaked): how many one client address may send a minute,
    # counted by the limiter rate limits use (in Redis when KEYPLANE_REDIS_URL is set).
    leak_reports_per_minute: int = Field(default=60, ge=1, le=100_000)
    # GitHub secret scanning (POST /v1/github/secret-scanning): where GitHub publishes the
    # keys it signs reports with, how long they are cached, and how often an unknown key
    # identifier (or a failed fetch) may trigger a new fetch (keyplane/partners.py).
    github_keys_url: str = "https://api.github.com/meta/public_keys/secret_scanning"
    github_keys_ttl_seconds: float = Field(default=3600.0, gt=0)
    github_keys_refetch_seconds: float = Field(default=60.0, ge=0)
    # Redis (redis://host:6379/0): rate limits and quotas live there, shared by every node
    # and worker. None: in this process (exact for one process only; `serve` refuses
    # several workers while any limit or quota exists).
    redis_url: SecretStr | None = None
    # When Redis cannot be reached during a verification: "open" admits unchecked, "closed"
    # refuses; None (the default) is closed for quotas (a prepaid count must not be
    # overspent) and open for rate limits (an outage of Redis must not become one of every
    # API behind keyplane). The decision is taken in one place: redislimits.py.
    redis_failure: Literal["open", "closed"] | None = None
    # Prefix of every Redis key keyplane writes (several deployments may share a Redis).
    redis_prefix: str = "keyplane:"
    # GET /metrics in the Prometheus text format (off: 404). It shares the API's port: keep
    # it from the public (load balancer, firewall) or require a bearer token for it
    # (api/routes/metrics.py).
    metrics: bool = False
    metrics_token: SecretStr | None = None
    # OAuth access tokens (POST /oauth/token): seconds a token lives (at most an hour, and
    # never past its key's expiry), and the ``iss`` it carries (e.g. this server's URL).
    token_lifetime_seconds: int = Field(default=900, ge=1, le=3600)
    token_issuer: str = "keyplane"  # noqa: S105 - a name, not a secret
    log_level: str = "info"
    # Console cookies are Secure: browsers send them over HTTPS and to localhost only. Turn
    # off only behind a trusted plain-HTTP hop (never on the open internet).
    secure_cookies: bool = True
    # development: the defaults of a laptop; production: refuse what is only fine on one
    # (a generated secret, the demo organization, insecure cookies) and hide /docs.
    env: Literal["development", "production"] = "development"
    # Interactive docs (/docs, /redoc); /openapi.json is always served. Default: on, except
    # in production.
    docs: bool | None = None
    # Peers whose X-Forwarded-For is believed (addresses or CIDRs, comma-separated). Empty:
    # the socket peer is the client, whatever a header says.
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            try:
                return tuple(ipaddress.ip_network(str(v), strict=False) for v in value)
            except ValueError as exc:
                raise ValueError(f"KEYPLANE_TRUSTED_PROXIES: {exc}") from exc
        return value

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def docs_enabled(self) -> bool:
        return self.docs if self.docs is not None else not self.production

    def production_problems(self, *, demo: bool) -> list[str]:
        """What makes this configuration unfit for KEYPLANE_ENV=production (empty: fit)."""
        if not self.production:
            return []
        problems = []
        if self.secret_key is None and self.secret_key_file is None:
            problems.append(
                "set KEYPLANE_SECRET_KEY or KEYPLANE_SECRET_KEY_FILE: a generated secret lives "
                "beside the database and is lost with the machine"
            )
        if demo:
            problems.append("--demo creates a known organization with a printed password")
        if not self.secure_cookies:
            problems.append("KEYPLANE_SECURE_COOKIES=false sends console sessions over plain HTTP")
        return problems

    def secret_source(self) -> str:
        """Where ``pepper()`` takes the secret from, in words for an error message and the
        startup log (never the value)."""
        if self.secret_key is not None:
            return "KEYPLANE_SECRET_KEY"
        if self.secret_key_file is not None:
            return f"the file {self.secret_key_file} (KEYPLANE_SECRET_KEY_FILE)"
        path = sqlite_path(self.database_url)
        if path is not None:
            return f"the generated file {path.with_name(path.name + '.secret')}"
        return "a random secret (in-memory database)"

    def pepper(self) -> bytes:
        """The key-hashing secret: given, read from a file, or generated beside SQLite."""
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value().encode()
            if len(value) < 32:
                raise ConfigurationError("KEYPLANE_SECRET_KEY must be at least 32 characters long")
            return value
        if self.secret_key_file is not None:
            return _read_secret(self.secret_key_file)
        path = sqlite_path(self.database_url)
        if path is not None:
            return _read_or_create_secret(path.with_name(path.name + ".secret"))
        if is_sqlite(self.database_url):
            return secrets.token_bytes(32)  # in-memory database: nothing outlives the process
        raise ConfigurationError(
            "Set KEYPLANE_SECRET_KEY (or KEYPLANE_SECRET_KEY_FILE) when using PostgreSQL: "
            "every node must hash keys with the same secret."
        )


def _read_secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ConfigurationError(
                f"the secret key file {path} can be read or changed by group or others "
                f"(mode {stat.S_IMODE(mode):o}); make it owner-only: chmod 600 {path}"
            )
        value = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the secret key file {path}: {exc.strerror}") from exc
    if len(value) < 32:
        raise ConfigurationError(f"the secret key in {path} must be at least 32 characters long")
    return value


def _read_or_create_secret(path: Path) -> bytes:
    """The generated secret beside a SQLite file, created on first use.

    Created whole or not at all: the secret is written to a private temporary file in the
    same directory, synced, then linked to its name. ``link`` fails when the name exists, so
    of two concurrent first starts one wins and the other reads the winner's complete file;
    nobody ever sees a half-written file, and a crash leaves at most a stray temporary file,
    never an empty secret.
    """
    if path.exists():
        return _read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp: mode 0600
            handle.write(value + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process created it first: use theirs
            return _read_secret(path)
    finally:
        os.unlink(temporary)
    _fsync_directory(path.parent)  # the new name survives a power loss too
    log.warning(
        "generated a new key-hashing secret at %s (owner-only). Keep it with the database: "
        "without it no existing key can be verified.",
        path,
    )
    return value


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
