"""The expiry jobs on SQLite and PostgreSQL, with the clock injected: expired keys noticed once
and purged after the organization's retention, warnings before expiry once per threshold and
expiry, rotation reminders once per key, each audited as ``system`` in its own transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.errors import NotFound
from keyplane.domain.models import AuditEvent
from keyplane.domain.scopes import ScopeSet
from keyplane.domain.verification import CachedKey
from keyplane.services import expiry as expiry_module
from keyplane.services.common import Principal
from keyplane.services.expiry import ExpiryJob, NoticeJob
from keyplane.services.keys import KeyChanges, NewKey
from keyplane.services.orgs import OrgChanges
from keyplane.services.users import NewUser
from keyplane.settings import Settings
from keyplane.storage.store import SqlStore
from keyplane.storage.tables import key_notices

from conftest import TEST_SECRET, Clock
from support.smtp import SmtpServer

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
JOB_EVENTS = ("key.expiring", "key.expired", "key.rotation_due", "key.purge")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kp(database_url: str, clock: Clock) -> Iterator[Keyplane]:
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET, run_jobs=False)
    kp = build(settings, clock=clock)
    yield kp
    kp.close()


@dataclass
class Tenant:
    kp: Keyplane
    owner: Principal
    owner_key_id: str

    @property
    def org_id(self) -> str:
        return self.owner.org_id

    def settings(self, **changes: Any) -> None:
        self.kp.orgs.update(self.owner, OrgChanges(**changes))

    def key(self, name: str = "ci", **new: Any) -> str:
        return self.kp.keys.create(self.owner, NewKey(name=name, **new)).view.key.id

    def events(self, *actions: str) -> list[AuditEvent]:
        with self.kp.store.read() as tx:
            chain = list(tx.audit.chain(self.org_id))
        return [e for e in chain if e.action in (actions or JOB_EVENTS)]


def tenant(kp: Keyplane, name: str = "Acme") -> Tenant:
    made = kp.orgs.create(name, f"owner@{name.lower()}.example")
    return Tenant(kp, Principal(made.org.id, made.owner.id, ScopeSet.full()), made.key_id)


@pytest.fixture
def acme(kp: Keyplane) -> Tenant:
    return tenant(kp)


def expiry(kp: Keyplane) -> ExpiryJob:
    return next(job for job in kp.jobs.jobs if isinstance(job, ExpiryJob))


def notices(kp: Keyplane) -> NoticeJob:
    return next(job for job in kp.jobs.jobs if isinstance(job, NoticeJob))


def exists(t: Tenant, key_id: str) -> bool:
    try:
        t.kp.keys.get(t.owner, key_id)
    except NotFound:
        return False
    return True


# ---- expiry and purge --------------------------------------------------------------------------


def test_both_jobs_run_in_the_runner() -> None:
    names = {job.name for job in build_jobs()}
    assert {"key-expiry", "key-notices"} <= names


def build_jobs() -> tuple[Any, ...]:
    kp = build(Settings(database_url="sqlite://", secret_key=TEST_SECRET), clock=Clock())
    try:
        return kp.jobs.jobs
    finally:
        kp.close()


def test_an_expired_key_is_purged_and_the_audit_log_keeps_the_events(
    acme: Tenant, clock: Clock
) -> None:
    key_id = acme.key(expires_in_days=1)
    lasting = acme.key("lasting")
    assert expiry(acme.kp).run(clock()) == 0

    clock.advance(DAY + HOUR)
    assert expiry(acme.kp).run(clock()) == 1

    assert not exists(acme, key_id)
    assert exists(acme, lasting)
    expired, purged = acme.events()
    assert (expired.action, purged.action) == ("key.expired", "key.purge")
    for event in (expired, purged):
        assert event.target_id == key_id
        assert event.target_name == "ci"
        assert (event.actor, event.actor_type, event.actor_name) == (
            "system",
            "system",
            "keyplane jobs",
        )
    assert purged.details["retention_days"] == 0
    assert expiry(acme.kp).run(clock()) == 0  # idempotent
    assert len(acme.events()) == 2


def test_a_purged_key_leaves_the_verification_cache(acme: Tenant, clock: Clock) -> None:
    secret = acme.kp.keys.create(acme.owner, NewKey(name="ci", expires_in_days=1)).secret
    assert acme.kp.verifier.verify(acme.org_id, secret).code == "VALID"
    assert isinstance(acme.kp.verifier.lookup(secret, load=False), CachedKey)

    clock.advance(2 * DAY)
    expiry(acme.kp).run(clock())

    assert not isinstance(acme.kp.verifier.lookup(secret, load=False), CachedKey)
    assert acme.kp.verifier.verify(acme.org_id, secret).code == "NOT_FOUND"


def test_with_retention_an_expired_key_stays_listed_as_expired_until_purged(
    acme: Tenant, clock: Clock
) -> None:
    acme.settings(expired_key_retention_days=3)
    key_id = acme.key(expires_in_days=1)

    clock.advance(DAY + HOUR)
    assert expiry(acme.kp).run(clock()) == 1
    assert expiry(acme.kp).run(clock()) == 0
    listed = acme.kp.keys.page(acme.owner, limit=10, status="expired").items
    assert [(v.key.id, v.status) for v in listed] == [(key_id, "expired")]
    assert [e.action for e in acme.events()] == ["key.expired"]
    assert acme.events()[0].details["retention_days"] == 3

    clock.advance(2 * DAY + 22 * HOUR)  # 3 days minus an hour since the expiry
    assert expiry(acme.kp).run(clock()) == 0
    assert exists(acme, key_id)

    clock.advance(2 * HOUR)
    assert expiry(acme.kp).run(clock()) == 1
    assert not exists(acme, key_id)
    assert [e.action for e in acme.events()] == ["key.expired", "key.purge"]


def test_retention_is_per_organization(kp: Keyplane, clock: Clock) -> None:
    keeps, purges = tenant(kp, "Keeps"), tenant(kp, "Purges")
    keeps.settings(expired_key_retention_days=10)
    kept, purged = keeps.key(expires_in_days=1), purges.key(expires_in_days=1)

    clock.advance(2 * DAY)
    expiry(kp).run(clock())

    assert exists(keeps, kept)
    assert not exists(purges, purged)


def test_a_revived_key_is_seen_expiring_again_at_its_new_expiry(acme: Tenant, clock: Clock) -> None:
    acme.settings(expired_key_retention_days=5)
    key_id = acme.key(expires_in_days=1)
    clock.advance(2 * DAY)
    expiry(acme.kp).run(clock())

    acme.kp.keys.update(acme.owner, key_id, KeyChanges(expires_at=clock() + DAY))
    clock.advance(2 * DAY)
    assert expiry(acme.kp).run(clock()) == 1

    first, second = acme.events("key.expired")
    assert first.details["expires_at"] != second.details["expires_at"]


def test_the_jobs_handle_more_keys_than_one_batch(
    acme: Tenant, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiry_module, "BATCH", 3)
    for n in range(7):
        acme.key(f"k{n}", expires_in_days=1)

    assert notices(acme.kp).run(clock()) == 7
    clock.advance(2 * DAY)
    assert expiry(acme.kp).run(clock()) == 7

    assert len(acme.events("key.expiring")) == len(acme.events("key.purge")) == 7


# ---- warnings before expiry ----------------------------------------------------------------------


def test_each_threshold_warns_once(acme: Tenant, clock: Clock) -> None:
    key_id = acme.key(expires_in_days=10)
    job = notices(acme.kp)
    assert job.run(clock()) == 0

    clock.advance(4 * DAY)  # 6 days left
    assert job.run(clock()) == 1
    assert job.run(clock()) == 0
    clock.advance(4 * DAY)  # 2 days left
    assert job.run(clock()) == 0
    clock.advance(DAY + HOUR)  # 23 hours left
    assert job.run(clock()) == 1
    assert job.run(clock()) == 0

    seven, one = acme.events()
    assert [seven.details["threshold_days"], one.details["threshold_days"]] == [7, 1]
    key = acme.kp.keys.get(acme.owner, key_id).key
    assert key.expires_at is not None
    assert seven.details["expires_at"] == key.expires_at.isoformat()
    assert (seven.action, seven.target_id, seven.actor_type) == ("key.expiring", key_id, "system")


def test_only_the_smallest_due_threshold_fires(acme: Tenant, clock: Clock) -> None:
    acme.key(expires_at=clock() + 12 * HOUR)

    assert notices(acme.kp).run(clock()) == 1

    [event] = acme.events()
    assert event.details["threshold_days"] == 1


def test_a_changed_expiry_is_warned_of_again(acme: Tenant, clock: Clock) -> None:
    key_id = acme.key(expires_in_days=10)
    clock.advance(4 * DAY)
    notices(acme.kp).run(clock())

    acme.kp.keys.update(acme.owner, key_id, KeyChanges(expires_at=clock() + 20 * DAY))
    assert notices(acme.kp).run(clock()) == 0
    clock.advance(14 * DAY)
    assert notices(acme.kp).run(clock()) == 1

    first, second = acme.events()
    assert first.details["threshold_days"] == second.details["threshold_days"] == 7
    assert first.details["expires_at"] != second.details["expires_at"]


def test_the_organizations_thresholds_decide(kp: Keyplane, clock: Clock) -> None:
    custom, silent = tenant(kp, "Custom"), tenant(kp, "Silent")
    custom.settings(expiry_warning_days=(30,))
    silent.settings(expiry_warning_days=())
    custom.key(expires_in_days=20)
    silent.key(expires_in_days=2)

    notices(kp).run(clock())
    clock.advance(DAY + HOUR)
    notices(kp).run(clock())

    assert [e.details["threshold_days"] for e in custom.events()] == [30]
    assert silent.events() == []


def test_a_rotated_out_key_is_not_warned_of_but_its_successor_is(
    acme: Tenant, clock: Clock
) -> None:
    old = acme.key(expires_in_days=30)
    successor = acme.kp.rotation.rotate(acme.owner, old, 3 * 86400).issued.view.key.id

    notices(acme.kp).run(clock())  # the old key's grace ends in 3 days: no warning

    assert acme.events() == []
    acme.kp.keys.update(acme.owner, successor, KeyChanges(expires_at=clock() + 2 * DAY))
    notices(acme.kp).run(clock())
    assert [e.target_id for e in acme.events()] == [successor]


# ---- rotation reminders -------------------------------------------------------------------------


def test_a_key_older_than_the_rotation_period_is_reminded_once(acme: Tenant, clock: Clock) -> None:
    acme.settings(rotation_period_days=30)
    key_id = acme.key()
    job = notices(acme.kp)

    clock.advance(29 * DAY)
    assert job.run(clock()) == 0
    clock.advance(2 * DAY)
    assert job.run(clock()) == 2  # the new key and the owner's key
    assert job.run(clock()) == 0

    reminders = {e.target_id: e for e in acme.events("key.rotation_due")}
    assert set(reminders) == {key_id, acme.owner_key_id}
    assert reminders[key_id].details["rotation_period_days"] == 30
    assert reminders[key_id].actor == "system"


def test_no_reminders_without_a_rotation_period_nor_for_expired_or_rotated_keys(
    acme: Tenant, clock: Clock
) -> None:
    acme.key("expiring", expires_in_days=5)
    rotated = acme.key("rotated")
    successor = acme.kp.rotation.rotate(acme.owner, rotated, 30 * 86400).issued.view.key.id
    clock.advance(10 * DAY)
    assert notices(acme.kp).remind(clock()) == 0

    acme.settings(rotation_period_days=7)
    notices(acme.kp).remind(clock())

    # Not the expired key, nor the one rotated out (in its grace period): its successor is.
    due = {e.target_id for e in acme.events("key.rotation_due")}
    assert due == {acme.owner_key_id, successor}


# ---- several runners -------------------------------------------------------------------------


def test_two_runners_at_once_give_each_notice_exactly_once(
    kp: Keyplane, clock: Clock, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiry_module, "BATCH", 4)  # many small claims, to interleave
    acme = tenant(kp)
    acme.settings(rotation_period_days=1)
    for n in range(30):
        acme.key(f"soon{n}", expires_in_days=3)
        acme.key(f"gone{n}", expires_in_days=1)
    clock.advance(DAY + HOUR)
    other = build(
        Settings(database_url=database_url, secret_key=TEST_SECRET, run_jobs=False), clock=clock
    )
    now = clock()
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def run(runner: Keyplane) -> None:
        barrier.wait()
        counts.append(notices(runner).run(now) + expiry(runner).run(now))

    threads = [threading.Thread(target=run, args=(k,)) for k in (kp, other)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        other.close()

    events = acme.events()
    per_key: dict[tuple[str, str], int] = {}
    for event in events:
        per_key[(event.action, event.target_id)] = (
            per_key.get((event.action, event.target_id), 0) + 1
        )
    assert set(per_key.values()) == {1}
    actions = [e.action for e in events]
    assert actions.count("key.expiring") == 30
    assert actions.count("key.expired") == actions.count("key.purge") == 30
    assert actions.count("key.rotation_due") == 31  # the soon keys and the owner's key
    assert sum(counts) == 30 + 30 + 31  # purges counted with their expiry


# ---- secure delete ------------------------------------------------------------------------------


def test_a_purged_keys_digest_is_gone_from_the_sqlite_file(
    kp: Keyplane, clock: Clock, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("secure_delete is SQLite's")
    acme = tenant(kp)
    key_id = acme.key(expires_in_days=1)
    digest = acme.kp.keys.get(acme.owner, key_id).key.digest
    path = Path(database_url.removeprefix("sqlite:///"))

    def file_bytes() -> bytes:
        """The database file and its WAL, as they are on disk."""
        wal = path.with_name(path.name + "-wal")
        return b"".join(p.read_bytes() for p in (path, wal) if p.exists())

    assert digest.encode() in file_bytes()
    clock.advance(2 * DAY)
    expiry(kp).run(clock())

    assert digest.encode() not in file_bytes()


def test_the_notices_of_a_purged_key_go_with_it(acme: Tenant, clock: Clock) -> None:
    acme.key(expires_in_days=2)
    notices(acme.kp).run(clock())
    clock.advance(3 * DAY)
    expiry(acme.kp).run(clock())

    store = acme.kp.store
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        assert conn.execute(select(key_notices)).all() == []


# ---- email --------------------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailing(database_url: str, clock: Clock, smtp: SmtpServer) -> Iterator[Keyplane]:
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        run_jobs=False,
        smtp_url=smtp.url,
        smtp_from="keyplane@acme.example",
    )
    kp = build(settings, clock=clock)
    yield kp
    kp.close()


def mail_states(kp: Keyplane) -> list[tuple[str, int]]:
    store = kp.store
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        rows = conn.execute(select(key_notices.c.mail_status, key_notices.c.mail_attempts))
        return [(row.mail_status, row.mail_attempts) for row in rows]


def test_a_warning_emails_the_keys_creator_in_plain_text(
    mailing: Keyplane, clock: Clock, smtp: SmtpServer
) -> None:
    acme = tenant(mailing)
    dev = mailing.users.create(acme.owner, NewUser("dev@acme.example", "Dev", "developer")).user
    as_dev = Principal(acme.org_id, dev.id, ScopeSet.full())
    issued = mailing.keys.create(as_dev, NewKey(name="deploy bot", expires_in_days=5))

    assert notices(mailing).run(clock()) == 2  # the warning and its email

    [(to, message)] = smtp.inbox.messages
    assert to == ["dev@acme.example"]
    assert message["From"] == "keyplane@acme.example"
    assert message["Subject"].startswith('[keyplane] API key "deploy bot" expires on ')
    body = message.get_payload(decode=True).decode()
    key = issued.view.key
    for shown in ("deploy bot", key.masked_key, key.id, "Acme", acme.org_id, "within 7 days"):
        assert shown in body
    assert issued.secret not in body
    assert "http" not in body
    assert mail_states(mailing) == [("sent", 1)]
    assert notices(mailing).run(clock()) == 0
    assert len(smtp.inbox.messages) == 1


def test_a_key_created_by_a_key_emails_every_owner(
    mailing: Keyplane, clock: Clock, smtp: SmtpServer
) -> None:
    acme = tenant(mailing)
    mailing.users.create(acme.owner, NewUser("second@acme.example", "Second", "owner"))
    by_key = Principal(acme.org_id, acme.owner_key_id, ScopeSet.full())
    mailing.keys.create(by_key, NewKey(name="made by a key", expires_in_days=2))
    acme.settings(rotation_period_days=1)
    clock.advance(DAY + HOUR)

    notices(mailing).run(clock())

    received = {
        (m["Subject"].partition(" expires on ")[0], tuple(sorted(to)))
        for to, m in smtp.inbox.messages
    }
    owners = ("owner@acme.example", "second@acme.example")
    assert received == {
        ('[keyplane] API key "made by a key"', owners),  # the expiry warning
        ('[keyplane] API key "made by a key" is due for rotation', owners),
        # The owner's key was created by the owner: to its creator only.
        ('[keyplane] API key "Owner key" is due for rotation', ("owner@acme.example",)),
    }


def test_a_key_whose_creator_left_emails_the_owners(
    mailing: Keyplane, clock: Clock, smtp: SmtpServer
) -> None:
    acme = tenant(mailing)
    dev = mailing.users.create(acme.owner, NewUser("dev@acme.example", "Dev", "developer")).user
    mailing.keys.create(
        Principal(acme.org_id, dev.id, ScopeSet.full()), NewKey(name="orphan", expires_in_days=2)
    )
    mailing.users.delete(acme.owner, dev.id)

    notices(mailing).run(clock())

    assert [to for to, _ in smtp.inbox.messages] == [["owner@acme.example"]]


def test_an_email_that_fails_is_retried_later_and_the_warning_is_not_lost(
    mailing: Keyplane, clock: Clock, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    acme = tenant(mailing)
    acme.key("ci", expires_in_days=3)
    smtp.inbox.refuse = True

    assert notices(mailing).run(clock()) == 1  # the warning; its email failed

    assert [e.action for e in acme.events()] == ["key.expiring"]
    assert mail_states(mailing) == [("pending", 1)]
    assert "emailing notice" in caplog.text
    smtp.inbox.refuse = False
    assert notices(mailing).run(clock()) == 0  # not before the retry delay
    clock.advance(6 * timedelta(minutes=1))
    assert notices(mailing).run(clock()) == 1
    assert mail_states(mailing) == [("sent", 2)]
    assert len(smtp.inbox.messages) == 1
    assert [e.action for e in acme.events()] == ["key.expiring"]


def test_an_email_still_failing_after_a_day_is_given_up_and_logged(
    mailing: Keyplane, clock: Clock, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    acme = tenant(mailing)
    acme.key("ci", expires_in_days=5)
    smtp.stop()
    notices(mailing).run(clock())
    clock.advance(12 * HOUR)
    notices(mailing).run(clock())
    assert mail_states(mailing) == [("pending", 2)]

    clock.advance(12 * HOUR + timedelta(minutes=1))
    notices(mailing).run(clock())

    assert mail_states(mailing) == [("failed", 2)]
    assert "gave up emailing notice" in caplog.text


def test_without_a_mail_server_notices_send_no_email(acme: Tenant, clock: Clock) -> None:
    acme.key("ci", expires_in_days=3)

    assert notices(acme.kp).run(clock()) == 1

    assert mail_states(acme.kp) == [("none", 0)]
