"""domain/webhooks.py: events, the audit mapping, URL and address rules, signing, backoff."""

from __future__ import annotations

import ipaddress
import itertools
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from standardwebhooks import Webhook as Verifier

from keyplane.domain.audit import ACTIONS
from keyplane.domain.errors import InvalidInput
from keyplane.domain.models import AuditEvent
from keyplane.domain.tokens import KeyHasher
from keyplane.domain.webhooks import (
    AUDIT_EVENTS,
    EVENTS,
    Webhook,
    check_events,
    check_url,
    event_for,
    headers,
    payload,
    refusal,
    retry_delay,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HASHER = KeyHasher(b"p" * 32)


def test_every_mapped_action_raises_a_known_event() -> None:
    assert set(AUDIT_EVENTS.values()) <= set(EVENTS)
    assert set(EVENTS) - set(AUDIT_EVENTS.values()) == {"webhook.test"}


@pytest.mark.parametrize(
    ("action", "event"),
    [
        ("key.create", "key.created"),
        ("key.rotate", "key.rotated"),
        ("app.delete", "app.deleted"),
        ("user.update", "user.updated"),
        ("key.expiring", "key.expiring"),  # written by a job, maybe not in ACTIONS yet
        ("user.sign_in", None),
        ("webhook.create", None),  # a webhook's own changes raise no event
        ("no.such_action", None),
    ],
)
def test_audit_actions_map_to_events(action: str, event: str | None) -> None:
    assert event_for(action) == event


def test_the_mapping_tolerates_actions_not_yet_in_the_audit_catalogue() -> None:
    known = {a for a in AUDIT_EVENTS if a in ACTIONS}
    assert {"key.create", "app.create", "user.delete"} <= known


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (["key.deleted", "key.created", "key.created"], ("key.created", "key.deleted")),
        (["*"], ("*",)),
        (["app.created", "*"], ("*",)),
    ],
)
def test_events_are_deduplicated_and_star_absorbs_the_rest(
    given: list[str], kept: tuple[str, ...]
) -> None:
    assert check_events(given) == kept


@pytest.mark.parametrize("events", [[], ["key.create"], ["*", "nope"]])
def test_bad_events_name_the_field(events: list[str]) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_events(events)
    assert raised.value.errors[0].field == "events"


@pytest.mark.parametrize(
    ("address", "private_allowed", "refused"),
    [
        ("169.254.169.254", True, True),
        ("fe80::1", True, True),
        ("fd00:ec2::254", True, True),
        ("100.100.100.200", True, True),
        ("::ffff:169.254.169.254", True, True),
        ("0.0.0.0", True, True),  # noqa: S104 - an address under test, nothing binds
        ("224.0.0.1", True, True),
        ("10.1.2.3", True, False),
        ("127.0.0.1", True, False),
        ("::1", True, False),
        ("10.1.2.3", False, True),
        ("192.168.0.1", False, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("fd12::1", False, True),
        ("::ffff:127.0.0.1", False, True),
        ("93.184.216.34", False, False),
        ("2606:4700::1111", False, False),
    ],
)
def test_which_addresses_a_delivery_may_reach(
    address: str, private_allowed: bool, refused: bool
) -> None:
    reason = refusal(ipaddress.ip_address(address), allow_private=private_allowed)
    assert (reason is not None) is refused


def test_private_urls_are_refused_when_saved_if_the_setting_says_so() -> None:
    with pytest.raises(InvalidInput):
        check_url("http://10.0.0.1/hooks", allow_private=False)
    assert check_url(" https://example.com/h ", allow_private=False) == "https://example.com/h"


@pytest.mark.parametrize(
    "url", ["http://example.com:0/", "http://example.com:99999/", "", "http://[::1/"]
)
def test_malformed_urls_name_the_field(url: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_url(url, allow_private=True)
    assert raised.value.errors[0].field == "url"


def test_the_signature_verifies_with_the_standard_library_for_each_valid_secret() -> None:
    old, new = HASHER.webhook_secret("whk_1", 1), HASHER.webhook_secret("whk_1", 2)
    body = b'{"type":"webhook.test"}'
    now = datetime.now(UTC)
    sent = headers([new, old], "msg_1", now, body)
    assert sent["webhook-id"] == "msg_1"
    assert sent["webhook-timestamp"] == str(int(now.timestamp()))
    for secret in (old, new):
        assert Verifier(secret).verify(body, sent) == {"type": "webhook.test"}


def test_secrets_differ_by_webhook_generation_and_server_secret() -> None:
    secrets = {
        HASHER.webhook_secret("whk_1", 1),
        HASHER.webhook_secret("whk_1", 2),
        HASHER.webhook_secret("whk_2", 1),
        KeyHasher(b"q" * 32).webhook_secret("whk_1", 1),
    }
    assert len(secrets) == 4
    assert all(s.startswith("whsec_") and len(s) == 6 + 44 for s in secrets)


def test_the_previous_generation_signs_only_until_its_time() -> None:
    hook = Webhook(
        id="whk_1",
        org_id="org_1",
        url="https://example.com",
        events=("*",),
        enabled=True,
        description="",
        created_by="key_1",
        created_at=NOW,
        updated_at=NOW,
        secret_generation=3,
        previous_secret_until=NOW + timedelta(hours=24),
    )
    assert hook.generations(NOW) == (3, 2)
    assert hook.generations(NOW + timedelta(hours=24)) == (3,)


def test_the_payload_is_the_standard_shape_built_from_the_audit_event() -> None:
    event = AuditEvent(
        id="evt_1",
        org_id="org_1",
        actor="usr_1",
        actor_type="user",
        actor_name="Ada",
        action="app.update",
        target_type="app",
        target_id="app_1",
        target_name="billing",
        details={"scopes": ["apps:read"]},
        changes={"name": {"before": "a", "after": "billing"}},
        created_at=NOW,
    )
    body = orjson.loads(payload("app.updated", event))
    assert body == {
        "type": "app.updated",
        "timestamp": "2026-11-30T12:00:00.000000Z",
        "data": {
            "id": "app_1",
            "object": "app",
            "name": "billing",
            "organization_id": "org_1",
            "actor": {"type": "user", "id": "usr_1", "name": "Ada"},
            "changes": {"name": {"before": "a", "after": "billing"}},
            "scopes": ["apps:read"],
            "audit_event_id": "evt_1",
        },
    }


def test_backoff_starts_within_ten_seconds_grows_and_is_capped() -> None:
    rng = random.Random(7)  # noqa: S311 - a repeatable jitter, no secret
    delays = [retry_delay(n, rng).total_seconds() for n in range(1, 16)]
    assert 3.75 <= delays[0] <= 6.25
    assert all(b > a for a, b in itertools.pairwise(delays[:5]))
    assert max(delays) <= 6 * 3600 * 1.25
    # Retried for at least 24 hours: the schedule spans a day within a few dozen tries.
    assert sum(retry_delay(n, rng).total_seconds() for n in range(1, 20)) > 24 * 3600
