"""The webhook-delivery job on a keyplane of its own (SQLite and PostgreSQL), driven with an
injected clock: the outbox commits with its change or not at all, retries stop after a day,
an endpoint failing for five days is disabled and its owners emailed (a real SMTP server),
a runner that died lets go of its messages, and one slow endpoint holds up no other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.audit import AuditQuery
from keyplane.domain.errors import Conflict
from keyplane.domain.ports import Job
from keyplane.domain.tokens import KeyHasher
from keyplane.mail import SmtpMailer, SmtpTarget
from keyplane.metrics import PrometheusMetrics
from keyplane.outbound import HttpWebhookSender
from keyplane.services.common import Principal
from keyplane.services.delivery import WebhookDeliveryJob
from keyplane.services.webhooks import WebhookChanges
from keyplane.settings import Settings

from conftest import TEST_SECRET, Clock, free_port
from support.receiver import Receiver
from support.smtp import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kp(database_url: str, clock: Clock, smtp: SmtpServer) -> Iterator[Keyplane]:
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        run_jobs=False,
        smtp_url=smtp.url,
    )
    made = build(settings, clock=clock)
    yield made
    made.close()


def _job(kp: Keyplane) -> Job:
    return next(j for j in kp.jobs.jobs if j.name == "webhook-delivery")


def _owner(kp: Keyplane) -> tuple[Principal, str]:
    made = kp.orgs.create("Acme", "owner@acme.test")
    return kp.verifier.authenticate(made.api_key), made.org.id


def test_the_job_is_frequent_enough_for_a_first_attempt_within_seconds(kp: Keyplane) -> None:
    assert _job(kp).interval is not None
    assert _job(kp).interval <= 2


def test_a_change_that_rolls_back_queues_nothing(kp: Keyplane, receiver: Receiver) -> None:
    owner, _ = _owner(kp)
    hook = kp.webhooks.create(owner, receiver.url, ["app.created"]).webhook
    kp.apps.create(owner, "billing")
    with pytest.raises(Conflict):
        kp.apps.create(owner, "billing")
    assert [m.event_type for m in kp.webhooks.deliveries(owner, hook.id, limit=10).items] == [
        "app.created"
    ]


def test_retries_stop_after_a_day(kp: Keyplane, clock: Clock, receiver: Receiver) -> None:
    owner, _ = _owner(kp)
    receiver.status = 500
    hook = kp.webhooks.create(owner, receiver.url, ["*"]).webhook
    kp.webhooks.test(owner, hook.id)
    job = _job(kp)
    assert job.run(clock()) == 1
    [pending] = kp.webhooks.deliveries(owner, hook.id, limit=10).items
    assert pending.status == "pending"
    assert pending.next_attempt_at is not None

    assert job.run(clock() + timedelta(hours=23)) == 1  # still within the day: retried
    assert job.run(clock() + timedelta(hours=24, seconds=1)) == 1
    [given_up] = kp.webhooks.deliveries(owner, hook.id, limit=10).items
    assert given_up.status == "failed"
    assert given_up.attempt_count == 3
    assert job.run(clock() + timedelta(days=2)) == 0
    assert len(receiver.received) == 3


def test_an_endpoint_failing_for_five_days_is_disabled_and_its_owners_told(
    kp: Keyplane, clock: Clock, receiver: Receiver, smtp: SmtpServer
) -> None:
    owner, org_id = _owner(kp)
    receiver.status = 500
    made = kp.webhooks.create(owner, receiver.url, ["*"])
    hook = made.webhook
    kp.webhooks.test(owner, hook.id)
    job = _job(kp)
    job.run(clock())
    clock.advance(timedelta(days=4, hours=23))
    kp.webhooks.test(owner, hook.id)
    job.run(clock())
    assert kp.webhooks.get(owner, hook.id).enabled

    clock.advance(timedelta(hours=1))
    kp.webhooks.test(owner, hook.id)
    job.run(clock())

    disabled = kp.webhooks.get(owner, hook.id)
    assert not disabled.enabled
    assert disabled.disabled_reason is not None
    events = kp.audit.page(owner, AuditQuery(action="webhook.disable"), limit=10, cursor=None).items
    [event] = events
    assert event.actor_type == "system"
    assert event.target_id == hook.id
    [(recipients, mail)] = smtp.inbox.messages
    assert recipients == ["owner@acme.test"]
    text = str(mail.get_payload())
    assert hook.id in text
    assert made.secret not in text
    # Disabled: its messages wait, nothing is sent to it any more.
    assert job.run(clock() + timedelta(minutes=5)) == 0
    assert event.org_id == org_id


def test_an_owners_email_the_mail_server_refused_is_sent_on_a_later_round(
    kp: Keyplane, clock: Clock, receiver: Receiver, smtp: SmtpServer
) -> None:
    owner, _ = _owner(kp)
    receiver.status = 500
    hook = kp.webhooks.create(owner, receiver.url, ["*"]).webhook
    kp.webhooks.test(owner, hook.id)
    nobody_listens = SmtpMailer(SmtpTarget.parse(f"smtp://127.0.0.1:{free_port()}"), "k@test")
    down = WebhookDeliveryJob(
        kp.store,
        KeyHasher(kp.settings.pepper()),
        HttpWebhookSender(allow_private=True),
        nobody_listens,
        stamp=clock,
    )
    down.run(clock())
    clock.advance(timedelta(days=5))
    kp.webhooks.test(owner, hook.id)

    down.run(clock())

    assert not kp.webhooks.get(owner, hook.id).enabled
    assert smtp.inbox.messages == []
    with kp.store.read() as tx:
        assert [w.id for w in tx.webhooks.notices_due(10)] == [hook.id]
    assert _job(kp).run(clock()) == 1  # the email, from the row
    [(recipients, _)] = smtp.inbox.messages
    assert recipients == ["owner@acme.test"]
    assert _job(kp).run(clock()) == 0
    kp.webhooks.update(owner, hook.id, WebhookChanges(enabled=True))
    assert kp.webhooks.get(owner, hook.id).failing_since is None


def test_a_runner_that_died_holding_a_message_lets_go_when_the_lease_ends(
    kp: Keyplane, clock: Clock, receiver: Receiver
) -> None:
    owner, _ = _owner(kp)
    hook = kp.webhooks.create(owner, receiver.url, ["*"]).webhook
    kp.webhooks.test(owner, hook.id)
    now = clock()
    with kp.store.transaction() as tx:  # a runner claims, then dies before sending
        assert len(tx.webhooks.claim(now, lease_until=now + timedelta(seconds=60), limit=10)) == 1
    job = _job(kp)
    assert job.run(now) == 0
    assert job.run(now + timedelta(seconds=61)) == 1
    assert len(receiver.received) == 1


def test_one_slow_endpoint_holds_up_no_other(
    kp: Keyplane, clock: Clock, receiver: Receiver
) -> None:
    owner, _ = _owner(kp)
    slow = Receiver().start()
    try:
        slow.delay = 3.0
        for url in (slow.url, receiver.url):
            hook = kp.webhooks.create(owner, url, ["*"]).webhook
            kp.webhooks.test(owner, hook.id)
        runner = threading.Thread(target=_job(kp).run, args=(clock(),))
        started = time.monotonic()
        runner.start()
        receiver.wait_for(1, seconds=2.5)
        assert len(receiver.received) == 1
        assert time.monotonic() - started < 2.5
        runner.join(timeout=15)
    finally:
        slow.stop()


def test_a_webhook_deleted_during_an_attempt_leaves_nothing_behind(
    kp: Keyplane, clock: Clock, receiver: Receiver
) -> None:
    owner, _ = _owner(kp)
    receiver.delay = 1.0
    hook = kp.webhooks.create(owner, receiver.url, ["*"]).webhook
    kp.webhooks.test(owner, hook.id)
    handled: list[int] = []
    runner = threading.Thread(target=lambda: handled.append(_job(kp).run(clock())))
    runner.start()
    receiver.wait_for(1, seconds=5)
    kp.webhooks.delete(owner, hook.id)
    runner.join(timeout=15)

    assert handled == [1]
    with kp.store.read() as tx:
        assert tx.webhooks.messages(owner.org_id, hook.id, limit=10, after=None) == []
    with kp.store.engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM webhook_attempts WHERE webhook_id = :id"), {"id": hook.id}
        ).scalar()
    assert count == 0


def test_the_signed_timestamp_is_the_real_time_of_sending_whatever_the_job_s_clock(
    kp: Keyplane, clock: Clock, receiver: Receiver
) -> None:
    """Receivers reject a webhook-timestamp more than 5 minutes from their own clock."""
    owner, _ = _owner(kp)
    made = kp.webhooks.create(owner, receiver.url, ["*"])
    clock.advance(timedelta(days=3))
    kp.webhooks.test(owner, made.webhook.id)

    _job(kp).run(clock())

    [received] = receiver.received
    assert received.verified(made.secret)["type"] == "webhook.test"
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60


# ---- several runners, redeliveries in flight, failing endpoints ----------------------------


def _runner(kp: Keyplane, clock: Clock, smtp_port: int, *, batch: int) -> WebhookDeliveryJob:
    return WebhookDeliveryJob(
        kp.store,
        KeyHasher(kp.settings.pepper()),
        HttpWebhookSender(allow_private=True),
        SmtpMailer(SmtpTarget.parse(f"smtp://127.0.0.1:{smtp_port}"), "keyplane@test"),
        stamp=clock,
        batch=batch,
    )


def test_two_runners_at_once_deliver_each_message_once_and_email_each_owner_once(
    kp: Keyplane,
    clock: Clock,
    database_url: str,
    receiver: Receiver,
    smtp: SmtpServer,
) -> None:
    """Two keyplane processes on one database, each running the job in a loop of small
    claims: every message reaches the receiver exactly once, and the owners of each
    endpoint the job disabled get one email, not one per runner."""
    owner, _ = _owner(kp)
    queued: set[str] = set()
    for _ in range(3):
        hook = kp.webhooks.create(owner, receiver.url, ["*"]).webhook
        queued |= {kp.webhooks.test(owner, hook.id).id for _ in range(8)}
    disabled = []
    for _ in range(4):
        hook = kp.webhooks.create(owner, receiver.url, ["*"]).webhook
        with kp.store.transaction() as tx:  # as the job leaves an endpoint it disabled
            tx.webhooks.update(
                replace(hook, enabled=False, disabled_reason="failing", notice_due=True)
            )
        disabled.append(hook.id)
    other = build(
        Settings(database_url=database_url, secret_key=TEST_SECRET, run_jobs=False), clock=clock
    )
    runners = [_runner(k, clock, smtp.port, batch=3) for k in (kp, other)]
    now = clock()
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def run(job: WebhookDeliveryJob) -> None:
        barrier.wait()
        total = 0
        while done := job.run(now):
            total += done
        counts.append(total)

    threads = [threading.Thread(target=run, args=(job,)) for job in runners]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        other.close()

    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert sorted(ids) == sorted(queued)  # each once, none missing
    assert sum(counts) == len(queued) + len(disabled)
    assert len(smtp.inbox.messages) == len(disabled)
    mails = " ".join(str(m.get_payload()) for _, m in smtp.inbox.messages)
    assert all(mails.count(hook_id) == 1 for hook_id in disabled)
    with kp.store.read() as tx:
        assert tx.webhooks.notices_due(10) == []


def test_a_redelivery_during_an_attempt_is_not_overwritten_when_the_attempt_ends(
    kp: Keyplane, clock: Clock, receiver: Receiver
) -> None:
    """The redelivery ends the attempt's lease: the attempt is listed when it finishes,
    and the message stays queued, sent again at the next round."""
    owner, _ = _owner(kp)
    receiver.delay = 1.0
    hook = kp.webhooks.create(owner, receiver.url, ["*"]).webhook
    message = kp.webhooks.test(owner, hook.id)
    runner = threading.Thread(target=_job(kp).run, args=(clock(),))
    runner.start()
    receiver.wait_for(1, seconds=5)
    again = kp.webhooks.redeliver(owner, hook.id, message.id)
    runner.join(timeout=15)

    [after] = kp.webhooks.deliveries(owner, hook.id, limit=10).items
    assert after.status == "pending"
    assert after.next_attempt_at == again.next_attempt_at
    assert [a.status_code for a in after.attempts] == [204]  # the attempt in flight, listed
    receiver.delay = 0.0
    assert _job(kp).run(clock()) == 1
    [delivered] = kp.webhooks.deliveries(owner, hook.id, limit=10).items
    assert delivered.status == "delivered"
    assert [r.headers["webhook-id"] for r in receiver.received] == [message.id, message.id]


def test_after_a_failure_an_endpoint_s_other_messages_are_due_at_the_next_round(
    kp: Keyplane, clock: Clock, receiver: Receiver
) -> None:
    """One failed attempt per endpoint per round; the messages claimed behind it are
    released, not left to a 60 s lease, and go in order; the failed one after its backoff."""
    owner, _ = _owner(kp)
    receiver.status = 500
    hook = kp.webhooks.create(owner, receiver.url, ["*"]).webhook
    first, second, third = (kp.webhooks.test(owner, hook.id).id for _ in range(3))
    job = _job(kp)
    now = clock()

    assert job.run(now) == 1
    assert job.run(now + timedelta(seconds=1)) == 1
    assert job.run(now + timedelta(seconds=2)) == 1
    assert job.run(now + timedelta(seconds=3)) == 0  # each waits for its backoff (>= 3.75 s)
    assert [r.headers["webhook-id"] for r in receiver.received] == [first, second, third]
    receiver.status = 204
    assert job.run(now + timedelta(seconds=30)) == 3
    # Now in the order their (jittered) backoffs ended.
    assert sorted(r.headers["webhook-id"] for r in receiver.received[3:]) == sorted(
        [first, second, third]
    )


def test_each_attempt_is_counted_by_result(
    database_url: str, clock: Clock, receiver: Receiver
) -> None:
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET, metrics=True)
    kp = build(settings, clock=clock)
    try:
        owner, _ = _owner(kp)
        receiver.status = 500
        failing = kp.webhooks.create(owner, receiver.url, ["*"]).webhook
        kp.webhooks.test(owner, failing.id)
        job = _job(kp)
        job.run(clock())  # failed, retried later
        job.run(clock() + timedelta(hours=24, seconds=1))  # gave up
        receiver.status = 200
        kp.webhooks.test(owner, failing.id)
        job.run(clock() + timedelta(hours=24, seconds=2))  # delivered
        assert isinstance(kp.metrics, PrometheusMetrics)
        text = kp.metrics.exposition().decode()
    finally:
        kp.close()
    counted = {
        sample.labels["result"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "keyplane_webhook_deliveries"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert counted == {"failed": 1, "gave_up": 1, "delivered": 1}
