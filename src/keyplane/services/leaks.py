"""Keys reported leaked: each one still usable is disabled or deleted, audited, and its
organization warned.

A report (``POST /v1/keys/leaked``, or GitHub's secret scanning) reaches ``handle`` after
its answer is sent (api/routes/leaks.py): nothing here can change what the reporter sees
or how long it waits, so the endpoint tells nobody which keys exist.

Per key, in one transaction: the key is disabled (or deleted, per the organization's
``leaked_key_action``), the ``key.leaked`` audit event written (which writes the webhook
outbox rows), and the cache invalidation sent to every node. A key that is no longer usable
(disabled, expired, deleted) is left alone, without an event: reporting a key again is a
no-op, so nobody can flood an organization's audit log, webhooks or inbox by reporting the
same leaked key over and over. Two reports racing for one key are settled by the database
(a conditional UPDATE, a DELETE's row count): one of them acts, the other finds nothing.

The email to the organization's owners and admins is sent after the commit, one per
organization and report, listing its keys. It is not in the outbox: a mail server that
refuses it (or a process that dies in between) loses it, with a log line; the webhook and
the audit event are kept either way.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from keyplane.domain.errors import MailUnavailable, StorageUnavailable
from keyplane.domain.models import ApiKey, Organization
from keyplane.domain.ports import Clock, Mailer, Metrics, RateLimiter, Store
from keyplane.domain.scopes import ScopeSet
from keyplane.domain.tokens import KeyHasher
from keyplane.services.common import Principal, record
from keyplane.services.delegation import delete_descendants, notify_descendants

log = logging.getLogger(__name__)

Reporter = Literal["api", "github"]
ACTOR: Final = "leak-report"
_ACTOR_NAMES: Final[dict[Reporter, str]] = {
    "api": "Leak report (POST /v1/keys/leaked)",
    "github": "Leak report (GitHub secret scanning)",
}
Done = Literal["disabled", "deleted"]
_DONE: Final[dict[str, Done]] = {"disable": "disabled", "delete": "deleted"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class ReportedKey:
    """A checksum-valid key of a report (domain/leaks.py ``reported_keys``), never shown,
    and where the reporter says it was found (``clean_source``)."""

    key: str = field(repr=False)
    source: str | None = None


@dataclass(frozen=True, slots=True)
class LeakReport:
    keys: tuple[ReportedKey, ...]
    reporter: Reporter
    reported_at: datetime
    client_ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Revoked:
    """A key this report disabled or deleted."""

    key: ApiKey
    action: Done
    source: str | None


class LeakService:
    def __init__(
        self,
        store: Store,
        hasher: KeyHasher,
        clock: Clock,
        mailer: Mailer,
        metrics: Metrics,
        background: Callable[..., Future[Any]],
        limiter: RateLimiter | None = None,
    ) -> None:
        # Runs reports after their answer is sent, one at a time (a single worker thread,
        # app.py): a flood of reports queues behind itself instead of taking the threads
        # every other request needs.
        self._background = background
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._mailer = mailer
        self._metrics = metrics
        self._limiter = limiter

    def submit(self, report: LeakReport) -> None:
        """Queues the report; the caller answers without waiting for it."""
        if report.keys:
            self._background(self._handle_logged, report)

    def drain(self, timeout: float = 10.0) -> None:
        """Returns once every report submitted so far is handled (tests, shutdown)."""
        self._background(lambda: None).result(timeout)

    def _handle_logged(self, report: LeakReport) -> None:
        try:
            self.handle(report)
        except StorageUnavailable:
            log.error("a leak report could not be handled: the database failed", exc_info=True)
        except Exception:
            log.exception("a leak report could not be handled")

    def handle(self, report: LeakReport) -> list[Revoked]:
        """Revokes every still-usable key of the report; answers what it did (for tests
        and logs; the reporter never sees it)."""
        sources = {self._hasher.digest(k.key): k.source for k in report.keys}
        if not sources:
            return []
        with self._store.read() as tx:
            found = tx.keys.find_by_digests(list(sources))
        now = self._clock()
        revoked: dict[str, list[Revoked]] = defaultdict(list)
        orgs: dict[str, Organization] = {}
        for key in found:
            if key.status(now) != "active":
                continue
            done = self._revoke(key, sources.get(key.digest), report, now, orgs)
            if done is not None:
                revoked[key.org_id].append(done)
        for org_id, keys in revoked.items():
            self._mail(orgs[org_id], keys, report)
        return [r for keys in revoked.values() for r in keys]

    def _revoke(
        self,
        key: ApiKey,
        source: str | None,
        report: LeakReport,
        now: datetime,
        orgs: dict[str, Organization],
    ) -> Revoked | None:
        with self._store.transaction() as tx:
            org = tx.orgs.get(key.org_id)
            if org is None:
                return None
            principal = Principal(
                org.id,
                ACTOR,
                ScopeSet.of(()),
                actor_name=_ACTOR_NAMES[report.reporter],
                client_ip=report.client_ip,
                user_agent=report.user_agent,
            )
            if org.leaked_key_action == "delete":
                acted = tx.keys.delete(org.id, key.id)
                if acted:  # its delegated keys go with it, each audited
                    delete_descendants(tx, principal, now, key)
            else:
                acted = tx.keys.deactivate(org.id, key.id, at=now)
                if acted:  # they stop with it; the event stream hears of each
                    notify_descendants(tx, key)
            if not acted:  # another report, or a person, got there first
                return None
            action = _DONE[org.leaked_key_action]
            record(
                tx,
                principal,
                now,
                "key.leaked",
                "key",
                key.id,
                target_name=key.name,
                masked_key=key.masked_key,
                app_id=key.app_id,
                action_taken=action,
                source=source,
                reporter=report.reporter,
                reported_at=report.reported_at.isoformat(),
            )
            tx.invalidations.key(key.id, key.org_id)
        orgs[org.id] = org
        if action == "deleted" and self._limiter is not None:
            self._limiter.forget(key.id)
        self._metrics.leak_report("revoked")
        log.warning(
            "key %s of organization %s was reported leaked (%s) and %s",
            key.id,
            org.id,
            report.reporter,
            action,
        )
        return Revoked(key, action, source)

    def _mail(self, org: Organization, revoked: list[Revoked], report: LeakReport) -> None:
        if not self._mailer.enabled:
            return
        with self._store.read() as tx:
            to = [user.email for user in tx.users.with_roles(org.id, ("owner", "admin"))]
        if not to:
            log.warning("organization %s has no owner or admin to tell of a leaked key", org.id)
            return
        subject, text = compose(org, revoked, report)
        try:
            self._mailer.send(to, subject, text)
        except MailUnavailable as exc:
            log.warning("emailing organization %s about leaked keys failed: %s", org.id, exc)


def compose(org: Organization, revoked: list[Revoked], report: LeakReport) -> tuple[str, str]:
    """The email: plain text, never a key (masked forms and ids only)."""
    count = len(revoked)
    org_name = _CONTROL.sub(" ", org.name)
    subject = (
        f'[keyplane] API key "{_CONTROL.sub(" ", revoked[0].key.name)}" was leaked'
        if count == 1
        else f"[keyplane] {count} API keys were leaked"
    )
    lines = [
        f"{'An API key' if count == 1 else f'{count} API keys'} of the organization "
        f'"{org_name}" ({org.id}) {"was" if count == 1 else "were"} found in public and '
        f"reported to keyplane at {report.reported_at:%Y-%m-%d %H:%M UTC}.",
        "",
    ]
    for done in revoked:
        key = done.key
        lines += [
            f"  Key:     {key.masked_key} ({_CONTROL.sub(' ', key.name)})",
            f"  Key ID:  {key.id}",
            f"  App:     {key.app_id or '-'}",
            f"  Action:  {done.action}",
            f"  Found:   {done.source or 'not said by the reporter'}",
            "",
        ]
    lines += [
        "Anyone who saw it could have used it. Issue a replacement, move your clients to it, "
        "and check the audit log and usage for calls you do not recognise. Then remove the "
        "key from where it was published (and from its history).",
        "",
        "-- keyplane",
        "",
    ]
    return subject, "\n".join(lines)
