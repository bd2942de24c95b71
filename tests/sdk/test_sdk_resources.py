"""Every namespace other than keys, against a real keyplane server over loopback: apps, the
catalogue, profiles, users, webhooks, audit events, usage and the organization."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import timedelta

import pytest

from keyplane_client import (
    App,
    AsyncKeyplane,
    AuditEvent,
    ConflictError,
    CreatedUser,
    CreatedWebhook,
    Delivery,
    Keyplane,
    NotFoundError,
    Preset,
    Profile,
    Resource,
    User,
    ValidationError,
    Webhook,
)

from conftest import CreatedKeys, Org
from support.aio import run
from support.receiver import Receiver


def test_apps_crud_and_their_scopes_govern_their_keys(kp: Keyplane) -> None:
    app = kp.apps.create(
        name="acme",
        scopes=["apps:read"],
        description="a customer",
        ratelimits=[{"name": "burst", "limit": 10, "period_seconds": 1}],
    )
    assert isinstance(app, App)
    assert (app.scopes, app.full_access, app.key_count) == (["apps:read"], False, 0)
    key = kp.keys.create(name="acme key", app_id=app.id)
    assert kp.keys.get(key.id).effective_scopes == ["apps:read"]
    changed = kp.apps.update(app.id, scopes=["apps:read", "profiles:read"], name="acme inc")
    assert changed.name == "acme inc"
    assert kp.keys.get(key.id).effective_scopes == ["apps:read", "profiles:read"]
    assert kp.apps.get(app.id).key_count == 1
    for n in range(2):
        kp.apps.create(name=f"other {n}")
    assert len(list(kp.apps.list(limit=1).pages())) >= 3
    assert {a.id for a in kp.apps.list()} >= {app.id}
    kp.apps.delete(app.id)
    with pytest.raises(NotFoundError):
        kp.keys.get(key.id)  # the app's keys went with it


def test_the_catalogue_holds_built_ins_and_custom_resources(kp: Keyplane) -> None:
    built_in = {r.name: r for r in kp.resources.list()}
    assert built_in["api_keys"].builtin is True
    assert "keys" not in built_in or built_in["keys"].actions == ["verify"]
    models = kp.resources.create(
        name="models", title="Models", description="ML", actions=["read", "deploy"]
    )
    assert isinstance(models, Resource)
    assert models.scopes == ["models:*", "models:read", "models:deploy"]
    assert kp.resources.get("models").title == "Models"
    assert kp.resources.update("models", actions=["read", "deploy", "undeploy"]).actions == [
        "read",
        "deploy",
        "undeploy",
    ]
    holder = kp.keys.create(name="deployer", scopes=["models:deploy"])
    with pytest.raises(ConflictError):
        kp.resources.delete("models")  # still granted
    kp.keys.delete(holder.id)
    kp.resources.delete("models")
    with pytest.raises(NotFoundError):
        kp.resources.get("models")


def test_profiles_travel_with_verdicts(kp: Keyplane) -> None:
    profile = kp.profiles.create(name="free", settings={"rpm": 60}, description="the free tier")
    assert isinstance(profile, Profile)
    key = kp.keys.create(name="free key", scopes=["apps:read"], profile_id=profile.id)
    kp.profiles.update(profile.id, settings={"rpm": 120})
    gateway = kp.keys.create(name="gateway", scopes=["keys:verify"])
    with Keyplane(kp.base_url, gateway.key) as as_gateway:
        verdict = as_gateway.keys.verify(key.key)
    assert verdict.profile is not None
    assert (verdict.profile.id, verdict.profile.settings) == (profile.id, {"rpm": 120})
    assert [p.id for p in kp.profiles.list()] == [profile.id]
    with pytest.raises(ConflictError):
        kp.profiles.delete(profile.id)  # carried by a key
    kp.keys.update(key.id, profile_id=None)
    kp.profiles.delete(profile.id)
    with pytest.raises(NotFoundError):
        kp.profiles.get(profile.id)


def test_presets_are_templates_keys_copy(kp: Keyplane) -> None:
    preset = kp.presets.create(
        name="dashboard", scopes=["apps:read"], description="read-only dashboard"
    )
    assert isinstance(preset, Preset)
    key = kp.keys.create(name="from a preset", preset="dashboard")
    assert key.scopes == ["apps:read"]
    changed = kp.presets.update(preset.id, scopes=["apps:read", "profiles:read"])
    assert changed.scopes == ["apps:read", "profiles:read"]
    assert kp.keys.get(key.id).scopes == ["apps:read"]  # its own copy
    assert [p.name for p in kp.presets.list()] == ["dashboard"]
    with pytest.raises(ValidationError) as both:
        kp.keys.create(name="both", preset=preset.id, scopes=["apps:read"])
    assert any(error.field.endswith("preset") for error in both.value.errors)
    kp.presets.delete(preset.id)
    with pytest.raises(NotFoundError):
        kp.presets.get(preset.id)


def test_users_are_invited_changed_and_removed(kp: Keyplane, created_keys: CreatedKeys) -> None:
    invited = kp.users.create(email="ada@example.com", name="Ada", role="developer")
    assert isinstance(invited, CreatedUser)
    assert invited.set_password_url is not None
    created_keys.note_set_password_link(invited.set_password_url)
    assert invited.set_password_url not in repr(invited)
    assert invited.has_password is False
    password = "correct horse battery staple"
    created_keys.add_password(password)
    direct = kp.users.create(email="bob@example.com", role="viewer", password=password)
    assert direct.set_password_url is None
    assert direct.has_password is True
    assert kp.users.update(invited.id, role="admin", name="Ada L.").role == "admin"
    fetched = kp.users.get(invited.id)
    assert isinstance(fetched, User)
    assert not hasattr(fetched, "set_password_url")
    emails = {u.email for u in kp.users.list(limit=1)}
    assert {"ada@example.com", "bob@example.com"} <= emails
    kp.users.delete(direct.id)
    with pytest.raises(NotFoundError):
        kp.users.get(direct.id)


def test_webhooks_show_their_secret_once_and_queue_tests(
    kp: Keyplane, receiver: Receiver, created_keys: CreatedKeys
) -> None:
    hook = kp.webhooks.create(url=receiver.url, events=["key.created"], description="ours")
    assert isinstance(hook, CreatedWebhook)
    created_keys.add_webhook_secret(hook.secret)
    assert hook.secret.startswith("whsec_")
    assert hook.secret not in repr(hook)
    fetched = kp.webhooks.get(hook.id)
    assert isinstance(fetched, Webhook)
    assert not hasattr(fetched, "secret")
    assert [w.id for w in kp.webhooks.list()] == [hook.id]

    queued = kp.webhooks.test(hook.id)
    assert isinstance(queued, Delivery)
    assert queued.event_type == "webhook.test"
    again = kp.webhooks.redeliver(hook.id, queued.id)
    assert again.id == queued.id
    assert queued.id in [d.id for d in kp.webhooks.deliveries(hook.id)]

    rolled = kp.webhooks.roll_secret(hook.id)
    created_keys.add_webhook_secret(rolled.secret)
    assert rolled.secret != hook.secret
    assert rolled.previous_secret_valid_until is not None

    disabled = kp.webhooks.update(hook.id, enabled=False, events=["*"])
    assert (disabled.enabled, disabled.events) == (False, ["*"])
    with pytest.raises(ConflictError):
        kp.webhooks.test(hook.id)
    kp.webhooks.delete(hook.id)
    with pytest.raises(NotFoundError):
        kp.webhooks.get(hook.id)


def test_audit_events_list_and_export(kp: Keyplane, sdk_org: Org) -> None:
    before = sdk_org.server.clock() - timedelta(seconds=5)  # the server's now: tests move it
    created = kp.keys.create(name="audited", scopes=["apps:read"])
    kp.keys.update(created.id, description="changed")

    events = list(kp.audit_events.list(target_id=created.id, start=before, limit=1))
    assert [e.action for e in events] == ["key.update", "key.create"]
    assert all(isinstance(e, AuditEvent) for e in events)
    assert events[0].changes["description"].after == "changed"
    assert events[0].target.id == created.id
    assert [e.id for e in kp.audit_events.list(action="key.update", target_id=created.id)] == [
        events[0].id
    ]

    jsonl = b"".join(kp.audit_events.export(target_id=created.id))
    assert [json.loads(line)["id"] for line in jsonl.splitlines()] == [e.id for e in events]
    rows = list(csv.reader(io.StringIO(b"".join(kp.audit_events.export(format="csv")).decode())))
    assert rows[0][:3] == ["id", "time", "seq"]
    assert {events[0].id, events[1].id} <= {row[0] for row in rows[1:]}
    end = sdk_org.server.clock()
    exported = list(kp.audit_events.export_events(target_id=created.id, end=end))
    assert [e.hash for e in exported] == [e.hash for e in events]
    assert created.key.encode() not in jsonl


def test_usage_counts_verifications_per_key(kp: Keyplane) -> None:
    key = kp.keys.create(name="busy", scopes=["apps:read"])
    gateway = kp.keys.create(name="gateway", scopes=["keys:verify"])
    with Keyplane(kp.base_url, gateway.key) as as_gateway:
        assert as_gateway.keys.verify(key.key).valid
        assert as_gateway.keys.verify(key.key, scopes=["apps:write"]).code == "INSUFFICIENT_SCOPE"
    deadline = time.monotonic() + 10
    while True:  # counts are written in batches (every 0.05 s on the test server)
        series = kp.usage.series(key_id=key.id, granularity="minute")
        counts: dict[str, int] = {}
        for point in series.data:
            for code, n in point.counts.items():
                counts[code] = counts.get(code, 0) + n
        if counts == {"VALID": 1, "INSUFFICIENT_SCOPE": 1} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counts == {"VALID": 1, "INSUFFICIENT_SCOPE": 1}
    assert series.key_id == key.id
    assert series.granularity == "minute"
    assert series.start < series.end
    top = kp.usage.top_keys(granularity="minute", start=series.start, limit=5)
    assert key.id in [k.key_id for k in top.data]


def test_the_organization_and_its_policies(kp: Keyplane) -> None:
    org = kp.org.get()
    assert org.id.startswith("org_")
    changed = kp.org.update(name="Renamed", max_key_lifetime_days=30, expiry_warning_days=[3])
    assert (changed.name, changed.max_key_lifetime_days) == ("Renamed", 30)
    assert changed.expiry_warning_days == [3]
    assert kp.org.update(max_key_lifetime_days=None).max_key_lifetime_days is None


def test_the_async_namespaces(sdk_org: Org, receiver: Receiver, created_keys: CreatedKeys) -> None:
    base_url, owner = sdk_org.server.base_url, sdk_org.api.key

    async def scenario() -> list[str]:
        done: list[str] = []
        async with AsyncKeyplane(base_url, owner) as kp:
            app = await kp.apps.create(name="async app", scopes=["apps:read"])
            await kp.apps.update(app.id, description="x")
            done.append((await kp.apps.get(app.id)).description)
            done += [a.name async for a in kp.apps.list()]
            await kp.apps.delete(app.id)
            resource = await kp.resources.create(name="tools", actions=["run"])
            await kp.resources.update("tools", description="t")
            done.append((await kp.resources.get(resource.name)).description)
            done += [r.name async for r in kp.resources.list() if not r.builtin]
            await kp.resources.delete("tools")
            profile = await kp.profiles.create(name="p", settings={"a": 1})
            await kp.profiles.update(profile.id, name="q")
            done.append((await kp.profiles.get(profile.id)).name)
            done += [p.name async for p in kp.profiles.list()]
            await kp.profiles.delete(profile.id)
            user = await kp.users.create(email="eve@example.com")
            if user.set_password_url:
                created_keys.note_set_password_link(user.set_password_url)
            await kp.users.update(user.id, name="Eve")
            done.append((await kp.users.get(user.id)).name)
            done += [u.email async for u in kp.users.list() if u.id == user.id]
            await kp.users.delete(user.id)
            hook = await kp.webhooks.create(url=receiver.url, events=["*"])
            created_keys.add_webhook_secret(hook.secret)
            await kp.webhooks.update(hook.id, description="d")
            done.append((await kp.webhooks.get(hook.id)).description)
            queued = await kp.webhooks.test(hook.id)
            await kp.webhooks.redeliver(hook.id, queued.id)
            done += [d.event_type async for d in kp.webhooks.deliveries(hook.id)]
            rolled = await kp.webhooks.roll_secret(hook.id)
            created_keys.add_webhook_secret(rolled.secret)
            done += [w.description async for w in kp.webhooks.list()]
            await kp.webhooks.delete(hook.id)
            done += [e.action async for e in kp.audit_events.list(target_id=hook.id)][-1:]
            chunks = [c async for c in kp.audit_events.export(format="csv", target_id=app.id)]
            done.append(b"".join(chunks).decode().split(",", 1)[0])
            done += [e.action async for e in kp.audit_events.export_events(target_id=app.id)]
            done.append((await kp.usage.series()).granularity)
            done.append((await kp.usage.top_keys()).granularity)
            done.append((await kp.org.update(name="Async org")).name)
            done.append((await kp.org.get()).name)
        return done

    assert run(scenario) == [
        "x",
        "async app",
        "t",
        "tools",
        "q",
        "q",
        "Eve",
        "eve@example.com",
        "d",
        "webhook.test",
        "d",
        "webhook.create",
        "id",
        "app.delete",
        "app.update",
        "app.create",
        "hour",
        "day",
        "Async org",
        "Async org",
    ]
