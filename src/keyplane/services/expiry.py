"""The expiry jobs: expired keys noticed and purged, warnings before expiry, rotation reminders.

``ExpiryJob`` (``key-expiry``) sees each key whose expiry has passed once (audit
``key.expired``) and, once the organization's ``expired_key_retention_days`` have passed
too, purges it: the row and its digest are deleted (``key.purge``), the audit log keeps both
events, and the cache forgets the key. With a retention of 0 both happen in one round.

``NoticeJob`` (``key-notices``) records each due expiry warning (``key.expiring``, rules in
domain/expiry.py) and rotation reminder (``key.rotation_due``) once, then sends the emails.
The audit event is the notice's webhook (mapped to an event by the webhook outbox), so it
is written in the same transaction as the notice row; the email cannot be, so the notice
keeps its email's state: ``pending`` emails are sent after the commit and retried on later
rounds until sent, or given up (and logged) a day after the notice.

Both are idempotent and safe with several runners: every batch claims its keys (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, SQLite's write lock otherwise), and the notices table's unique
(key, kind, threshold, due time) is what makes "once" hold even when two runners race.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from keyplane.domain.errors import MailUnavailable
from keyplane.domain.expiry import warning_bands
from keyplane.domain.ids import new_id
from keyplane.domain.limits import WARNING_DAYS_MAX
from keyplane.domain.models import ApiKey, KeyNotice, MailStatus, NoticeKind, Organization
from keyplane.domain.ports import Mailer, Store, Transaction
from keyplane.domain.scopes import ScopeSet
from keyplane.services.common import Principal, record
from keyplane.services.delegation import delete_descendants

log = logging.getLogger(__name__)

SYSTEM_ACTOR: Final = "system"
SYSTEM_NAME: Final = "keyplane jobs"
BATCH: Final = 100
# How long a runner holds an email it is sending; also the wait before retrying a failure.
MAIL_RETRY: Final = timedelta(minutes=5)
MAIL_GIVE_UP: Final = timedelta(days=1)


def system_principal(org_id: str) -> Principal:
    """The jobs' actor in audit events (actor type ``system``); it is never asked for scopes."""
    return Principal(org_id, SYSTEM_ACTOR, ScopeSet.of(()), actor_name=SYSTEM_NAME)


def _iso(value: datetime) -> str:
    return value.isoformat()


class ExpiryJob:
    """Notices expired keys and purges them after the organization's retention (a Job)."""

    name = "key-expiry"
    interval: float | None = None

    def __init__(self, store: Store, scrub: Callable[[], None] | None = None) -> None:
        self._store = store
        # Called after a round that purged keys: SQLite empties its WAL (SqlStore.scrub).
        self._scrub = scrub

    def run(self, now: datetime) -> int:
        with self._store.read() as tx:
            org_ids = tx.keys.orgs_with_expiries(after=None, until=now)
        purged: list[str] = []
        handled = sum(self._org(org_id, now, purged) for org_id in org_ids)
        if purged and self._scrub is not None:
            self._scrub()
        return handled

    def _org(self, org_id: str, now: datetime, purged_in_round: list[str]) -> int:
        handled = 0
        while True:
            purged: list[str] = []
            with self._store.transaction() as tx:
                org = tx.orgs.get(org_id)
                if org is None:
                    return handled
                purge_before = now - timedelta(days=org.expired_key_retention_days)
                keys = tx.keys.claim_expired(
                    org_id, now=now, purge_before=purge_before, limit=BATCH
                )
                for key in keys:
                    if key.id in purged:  # went with its purged parent, earlier in the batch
                        continue
                    handled += self._expire(tx, org, key, now, purge_before, purged)
            purged_in_round.extend(purged)
            if len(keys) < BATCH:
                return handled

    @staticmethod
    def _expire(
        tx: Transaction,
        org: Organization,
        key: ApiKey,
        now: datetime,
        purge_before: datetime,
        purged: list[str],
    ) -> int:
        assert key.expires_at is not None  # noqa: S101 - claim_expired answers expired keys only
        principal = system_principal(org.id)
        done = 0
        expired = KeyNotice(new_id("ntc"), org.id, key.id, "expired", 0, key.expires_at, now)
        if tx.notices.add(expired):
            record(
                tx,
                principal,
                now,
                "key.expired",
                "key",
                key.id,
                target_name=key.name,
                expires_at=_iso(key.expires_at),
                retention_days=org.expired_key_retention_days,
            )
            done = 1
        if key.expires_at <= purge_before:
            # Its descendants go first (they expire no later: services/delegation.py),
            # each purged and audited here, whatever their own retention round.
            purged.extend(delete_descendants(tx, principal, now, key, purge=True))
        if key.expires_at <= purge_before and tx.keys.delete(org.id, key.id):
            # The notices go with the row (ON DELETE CASCADE); the audit events stay.
            record(
                tx,
                principal,
                now,
                "key.purge",
                "key",
                key.id,
                target_name=key.name,
                expires_at=_iso(key.expires_at),
                retention_days=org.expired_key_retention_days,
            )
            # An expired key answers EXPIRED from its cached record already; the notice
            # only makes every process forget the record of a key that no longer exists.
            tx.invalidations.key(key.id, org.id)
            purged.append(key.id)
            done = 1
        return done


@dataclass(frozen=True, slots=True)
class _Due:
    """What one pass of NoticeJob looks for: warnings at ``threshold`` days for expiries in
    ``(after, until]`` (``after`` is the next smaller threshold's end, or now), or rotation
    reminders for unexpired keys (expiring after ``after``, i.e. now) created at or before
    ``until``."""

    kind: NoticeKind
    threshold: int
    after: datetime
    until: datetime

    def claim(self, tx: Transaction, org_id: str) -> list[ApiKey]:
        if self.kind == "expiring":
            return tx.keys.claim_expiring(
                org_id,
                after=self.after,
                until=self.until,
                threshold_days=self.threshold,
                limit=BATCH,
            )
        return tx.keys.claim_rotation_due(
            org_id, created_before=self.until, now=self.after, limit=BATCH
        )

    def about(self, key: ApiKey) -> datetime:
        """A warning is about the expiry it saw (a changed expiry is warned of again); a
        reminder about the key's creation."""
        if self.kind == "expiring":
            assert key.expires_at is not None  # noqa: S101 - claim_expiring's condition
            return key.expires_at
        return key.created_at


@dataclass(frozen=True, slots=True)
class _Mail:
    to: list[str]
    subject: str
    text: str


class NoticeJob:
    """Expiry warnings and rotation reminders: recorded once each, then emailed (a Job)."""

    name = "key-notices"
    interval: float | None = None

    def __init__(self, store: Store, mailer: Mailer) -> None:
        self._store = store
        self._mailer = mailer

    def run(self, now: datetime) -> int:
        return self.warn(now) + self.remind(now) + self.mail(now)

    def warn(self, now: datetime) -> int:
        """Records the due expiry warning of every key that has none yet."""
        with self._store.read() as tx:
            org_ids = tx.keys.orgs_with_expiries(
                after=now, until=now + timedelta(days=WARNING_DAYS_MAX)
            )
            orgs = [org for org in map(tx.orgs.get, org_ids) if org and org.expiry_warning_days]
        handled = 0
        for org in orgs:
            for days, after, until in warning_bands(org.expiry_warning_days, now):
                handled += self._batches(org, now, _Due("expiring", days, after, until))
        return handled

    def remind(self, now: datetime) -> int:
        """Records a rotation reminder for every key older than its organization's period."""
        with self._store.read() as tx:
            orgs = tx.orgs.with_rotation_period()
        handled = 0
        for org in orgs:
            assert org.rotation_period_days is not None  # noqa: S101 - the query's condition
            created_before = now - timedelta(days=org.rotation_period_days)
            handled += self._batches(org, now, _Due("rotation_due", 0, now, created_before))
        return handled

    def _batches(self, org: Organization, now: datetime, due: _Due) -> int:
        handled = 0
        mail: MailStatus = "pending" if self._mailer.enabled else "none"
        while True:
            with self._store.transaction() as tx:
                keys = due.claim(tx, org.id)
                for key in keys:
                    notice = KeyNotice(
                        new_id("ntc"),
                        org.id,
                        key.id,
                        due.kind,
                        due.threshold,
                        due.about(key),
                        now,
                        mail,
                    )
                    if tx.notices.add(notice):
                        _record_notice(tx, org, key, notice, now)
                        handled += 1
            if len(keys) < BATCH:
                return handled

    def mail(self, now: datetime) -> int:
        """Sends pending emails; stops at the first failure (the server is likely down for
        every message: the rest wait for a later round instead of each taking a timeout)."""
        if not self._mailer.enabled:
            return 0
        with self._store.transaction() as tx:
            abandoned = tx.notices.give_up(now - MAIL_GIVE_UP)
        for notice in abandoned:
            log.warning(
                "gave up emailing notice %s (%s about key %s) after %d attempts in a day",
                notice.id,
                notice.kind,
                notice.key_id,
                notice.mail_attempts,
            )
        sent = 0
        while True:
            with self._store.transaction() as tx:
                claimed = tx.notices.claim_unsent(now, until=now + MAIL_RETRY, limit=BATCH)
            for notice in claimed:
                if not self._send(notice, now):
                    return sent
                sent += 1
            if len(claimed) < BATCH:
                return sent

    def _send(self, notice: KeyNotice, now: datetime) -> bool:
        with self._store.read() as tx:
            mail = _compose(tx, notice)
        attempts = notice.mail_attempts + 1
        if mail is None:
            with self._store.transaction() as tx:
                tx.notices.set_mail(notice.id, "none", notice.mail_attempts, retry_at=None)
            return True
        try:
            self._mailer.send(mail.to, mail.subject, mail.text)
        except MailUnavailable as exc:
            log.warning("emailing notice %s failed (attempt %d): %s", notice.id, attempts, exc)
            with self._store.transaction() as tx:
                tx.notices.set_mail(notice.id, "pending", attempts, retry_at=now + MAIL_RETRY)
            return False
        with self._store.transaction() as tx:
            tx.notices.set_mail(notice.id, "sent", attempts, retry_at=None)
        return True


def _record_notice(
    tx: Transaction, org: Organization, key: ApiKey, notice: KeyNotice, now: datetime
) -> None:
    principal = system_principal(org.id)
    if notice.kind == "expiring":
        record(
            tx,
            principal,
            now,
            "key.expiring",
            "key",
            key.id,
            target_name=key.name,
            threshold_days=notice.threshold_days,
            expires_at=_iso(notice.due_at),
        )
    else:
        record(
            tx,
            principal,
            now,
            "key.rotation_due",
            "key",
            key.id,
            target_name=key.name,
            rotation_period_days=org.rotation_period_days,
            created_at=_iso(key.created_at),
        )


def recipients(tx: Transaction, key: ApiKey) -> list[str]:
    """The key's creator when a person created it (and still belongs to the organization);
    otherwise (a key created by a key, or by someone since removed) the owners."""
    if key.created_by.startswith("usr_"):
        creator = tx.users.get(key.org_id, key.created_by)
        if creator is not None:
            return [creator.email]
    return [owner.email for owner in tx.users.owners(key.org_id)]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _compose(tx: Transaction, notice: KeyNotice) -> _Mail | None:
    """The email of a notice: plain text, no links, never the key (its masked form only)."""
    key = tx.keys.get(notice.org_id, notice.key_id)
    org = tx.orgs.get(notice.org_id)
    if key is None or org is None:
        return None
    to = recipients(tx, key)
    if not to:
        log.warning("notice %s has nobody to email (no creator, no owner)", notice.id)
        return None
    name = _CONTROL.sub(" ", key.name)  # a header must not break into two
    when = notice.due_at.strftime("%Y-%m-%d %H:%M UTC")
    if notice.kind == "expiring":
        subject = f'[keyplane] API key "{name}" expires on {when}'
        opening = (
            f'The API key "{name}" of the organization "{org.name}" expires on {when} '
            f"(within {notice.threshold_days} day{'s' if notice.threshold_days != 1 else ''})."
        )
        advice = (
            "Rotate it or extend its expiry before then: once it has expired, every request "
            "made with it is refused, and the key is deleted."
        )
    else:
        subject = f'[keyplane] API key "{name}" is due for rotation'
        opening = (
            f'The API key "{name}" of the organization "{org.name}" was created on {when}, '
            f"more than {org.rotation_period_days} days ago: the organization's rotation "
            "period."
        )
        advice = "Rotate it: issue its successor, move your clients to it, then let it expire."
    expires = key.expires_at.strftime("%Y-%m-%d %H:%M UTC") if key.expires_at else "never"
    text = "\n".join(
        (
            opening,
            "",
            f"  Key:          {key.masked_key}",
            f"  Key ID:       {key.id}",
            f"  Organization: {org.name} ({org.id})",
            f"  Expires:      {expires}",
            "",
            advice,
            "",
            "-- keyplane",
            "",
        )
    )
    return _Mail(to, subject, text)
