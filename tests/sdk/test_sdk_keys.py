"""kp.keys against a real keyplane server over loopback, blocking and asyncio."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keyplane_client import AsyncKeyplane, CreatedKey, Key, Keyplane, NotFoundError, Verdict

from conftest import Org
from support.aio import run


def test_a_created_key_carries_the_full_key_once_and_never_shows_it_in_repr(
    kp: Keyplane,
) -> None:
    created = kp.keys.create(name="gateway", scopes=["keys:verify"], metadata={"team": "a"})
    assert isinstance(created, CreatedKey)
    assert created.key.startswith("kp_live_")
    assert created.scopes == ["keys:verify"]
    assert created.metadata == {"team": "a"}
    assert created.masked_key in repr(created)
    assert created.key not in repr(created)
    assert created.key not in str(created)
    assert created.key[8:40] not in repr(created)

    fetched = kp.keys.get(created.id)
    assert isinstance(fetched, Key)
    assert not hasattr(fetched, "key")
    assert fetched.masked_key == created.masked_key


def test_create_sends_only_what_is_given(kp: Keyplane) -> None:
    """Without scopes the server's default applies (full access, and says so)."""
    created = kp.keys.create(name="no scopes")
    assert created.full_access is True
    assert "FULL ACCESS" in created.warning
    assert created.expires_at is None
    assert created.app_id is None


def test_create_with_every_field(kp: Keyplane, sdk_org: Org) -> None:
    app = kp.apps.create(name="acme", scopes=["apps:read", "api_keys:read"])
    profile = kp.profiles.create(name="free", settings={"rpm": 60})
    expires = sdk_org.server.clock() + timedelta(days=3)  # the server's now: tests move it
    created = kp.keys.create(
        name="acme prod",
        description="for acme",
        scopes=["apps:read"],
        app_id=app.id,
        expires_at=expires,
        profile_id=profile.id,
        metadata={"customer": 7},
        environment="test",
        ratelimits=[{"name": "burst", "limit": 5, "period_seconds": 1}],
        quota={"remaining": 100},
        ip_allowlist=["203.0.113.0/24"],
    )
    assert created.key.startswith("kp_test_")
    assert created.app_id == app.id
    assert created.profile_id == profile.id
    assert created.effective_scopes == ["apps:read"]
    assert created.expires_at is not None
    assert abs(created.expires_at - expires) < timedelta(seconds=1)
    assert [(r.name, r.limit, r.period_seconds) for r in created.ratelimits] == [("burst", 5, 1)]
    assert created.quota is not None
    assert created.quota.remaining == 100
    assert created.ip_allowlist == ["203.0.113.0/24"]


def test_update_disable_enable_and_null_removes_the_expiry(kp: Keyplane) -> None:
    created = kp.keys.create(name="k", scopes=["apps:read"], expires_in_days=5)
    assert created.expires_at is not None
    updated = kp.keys.update(created.id, description="changed", metadata={"x": 1})
    assert (updated.description, updated.metadata) == ("changed", {"x": 1})
    assert updated.expires_at is not None  # not given: unchanged
    assert kp.keys.disable(created.id).status == "inactive"
    assert kp.keys.enable(created.id).status == "active"
    assert kp.keys.update(created.id, expires_at=None).expires_at is None


def test_verify_answers_verdicts_with_limits_and_quota(kp: Keyplane) -> None:
    gateway = kp.keys.create(name="gateway", scopes=["keys:verify"])
    customer = kp.keys.create(
        name="customer",
        scopes=["apps:read"],
        metadata={"plan": "pro"},
        ratelimits=[{"name": "burst", "limit": 10, "period_seconds": 60}],
        quota={"remaining": 50},
    )
    with Keyplane(kp.base_url, gateway.key) as as_gateway:
        verdict = as_gateway.keys.verify(customer.key, scopes=["apps:read"], cost=2)
        assert isinstance(verdict, Verdict)
        assert (verdict.valid, verdict.code) == (True, "VALID")
        assert verdict.key_id == customer.id
        assert verdict.scopes == ["apps:read"]
        assert verdict.metadata == {"plan": "pro"}
        assert verdict.app_id is None
        assert verdict.profile is None
        [limit] = verdict.ratelimits
        assert (limit.name, limit.limit, limit.remaining) == ("burst", 10, 8)
        assert limit.reset_seconds >= 1
        assert limit.reset_at is not None
        assert verdict.quota is not None
        assert verdict.quota.remaining == 48

        refused = as_gateway.keys.verify(customer.key, scopes=["apps:write"])
        assert (refused.valid, refused.code) == (False, "INSUFFICIENT_SCOPE")
        assert refused.missing_scopes == ["apps:write"]

        kp.keys.disable(customer.id)
        assert as_gateway.keys.verify(customer.key).code == "DISABLED"
        assert as_gateway.keys.verify("kp_live_nonsense").code == "NOT_FOUND"


def test_rotate_issues_a_successor_shown_once(kp: Keyplane) -> None:
    old = kp.keys.create(name="rotating", scopes=["apps:read"])
    new = kp.keys.rotate(old.id, grace_period_seconds=60)
    assert new.key != old.key
    assert new.rotated_from == old.id
    assert new.key not in repr(new)
    assert kp.keys.get(old.id).rotated_to == new.id


def test_delete_then_get_is_NotFoundError(kp: Keyplane) -> None:
    created = kp.keys.create(name="short-lived", scopes=["apps:read"])
    kp.keys.delete(created.id)
    with pytest.raises(NotFoundError) as raised:
        kp.keys.get(created.id)
    assert raised.value.status == 404


def test_list_follows_next_cursor_over_several_pages(kp: Keyplane) -> None:
    made = {kp.keys.create(name=f"k{i}", scopes=["apps:read"]).id for i in range(5)}
    pages = list(kp.keys.list(limit=2).pages())
    assert len(pages) >= 3
    assert all(len(page.data) <= 2 for page in pages)
    listed = [key.id for key in kp.keys.list(limit=2)]
    assert made <= set(listed)
    assert len(listed) == len(set(listed))
    inactive = kp.keys.list(status="inactive")
    assert list(inactive) == []


def test_the_async_client_does_the_same(sdk_org: Org) -> None:
    base_url, owner = sdk_org.server.base_url, sdk_org.api.key

    async def scenario() -> tuple[list[str], set[str], str, str, str]:
        async with AsyncKeyplane(base_url, owner) as kp:
            made = {(await kp.keys.create(name=f"a{i}", scopes=["apps:read"])).id for i in range(3)}
            listed = [key.id async for key in kp.keys.list(limit=2)]
            first = next(iter(made))
            updated = await kp.keys.update(first, description="async")
            disabled = await kp.keys.disable(first)
            await kp.keys.enable(first)
            rotated = await kp.keys.rotate(first, grace_period_seconds=0)
            gateway = await kp.keys.create(name="gw", scopes=["keys:verify"])
            async with AsyncKeyplane(base_url, gateway.key) as as_gateway:
                verdict = await as_gateway.keys.verify(rotated.key, scopes=["apps:read"])
            await kp.keys.delete(rotated.id)
            try:
                await kp.keys.get(rotated.id)
            except NotFoundError as error:
                gone = error.title
            return listed, made, updated.description, disabled.status, verdict.code + gone

    listed, made, description, status, outcome = run(scenario)
    assert made <= set(listed)
    assert description == "async"
    assert status == "inactive"
    assert outcome == "VALIDNot found"


def test_a_key_hands_an_agent_a_narrower_child_and_lists_it(kp: Keyplane, sdk_org: Org) -> None:
    parent = kp.keys.create(name="job runner", scopes=["apps:read", "profiles:read"])
    with Keyplane(kp.base_url, parent.key) as as_parent:
        child = as_parent.keys.create_child(
            parent.id, name="agent run 42", scopes=["apps:read"], expires_in=900
        )
    assert isinstance(child, CreatedKey)
    assert (child.parent_id, child.depth, child.scopes) == (parent.id, 1, ["apps:read"])
    assert child.expires_at is not None
    assert child.expires_at <= sdk_org.server.clock() + timedelta(seconds=901)
    assert [k.id for k in kp.keys.children(parent.id)] == [child.id]
    assert [k.id for k in kp.keys.list(parent_id=parent.id)] == [child.id]

    async def from_the_child() -> str:
        async with AsyncKeyplane(kp.base_url, child.key) as as_child:
            return (await as_child.keys.create_child(child.id, name="sub-agent")).id

    async def listed_by_the_owner() -> list[str]:
        async with AsyncKeyplane(kp.base_url, sdk_org.api.key) as owner:
            return [k.id async for k in owner.keys.children(child.id)]

    assert run(listed_by_the_owner) == []
    grandchild = run(from_the_child)
    assert run(listed_by_the_owner) == [grandchild]
    kp.keys.update(parent.id, status="inactive")
    assert kp.keys.verify(child.key).code == "DISABLED"
