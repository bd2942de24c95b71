"""A key's life against a model: create, verify, disable, enable, rotate, change its app's
scopes, let time pass until it expires, delete it or its app, in any order hypothesis finds.

The services run in-process on a real SQLite database with an injected clock; the verifier
keeps its cache warm between steps, so a change that forgets to invalidate a cached verdict
shows up as a divergence. After every step each key's verdict must equal the model's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.errors import Conflict, NotFound
from keyplane.domain.scopes import ScopeSet
from keyplane.domain.verification import Code
from keyplane.services.apps import AppChanges
from keyplane.services.common import Principal
from keyplane.services.keys import KeyChanges, NewKey
from keyplane.settings import Settings

from conftest import TEST_SECRET, Clock

SCOPES = st.lists(
    st.sampled_from(["apps:read", "apps:write", "apps:*", "profiles:read", "keys:verify"]),
    max_size=3,
    unique=True,
).map(tuple)
ASKED = st.lists(st.sampled_from(["apps:read", "apps:write", "profiles:read"]), max_size=2)


@dataclass
class ModelKey:
    secret: str
    app_id: str | None
    scopes: tuple[str, ...]
    expires_at: datetime | None
    created_at: datetime
    active: bool = True
    deleted: bool = False
    rotated: bool = False


class Lifecycle(RuleBasedStateMachine):
    kp: Keyplane
    clock: Clock

    keys = Bundle("keys")
    apps = Bundle("apps")

    def __init__(self) -> None:
        super().__init__()
        suffix = secrets.token_hex(4)
        made = self.kp.orgs.create(f"Machine {suffix}", f"machine-{suffix}@example.com")
        self.org_id = made.org.id
        self.owner = Principal(made.org.id, made.owner.id, ScopeSet.full())
        self.model: dict[str, ModelKey] = {}
        self.app_scopes: dict[str, tuple[str, ...]] = {}

    # ---- the model ---------------------------------------------------------------------

    def expected(self, key: ModelKey, asked: list[str]) -> Code:
        if key.deleted:
            return "NOT_FOUND"
        if key.expires_at is not None and key.expires_at <= self.clock():
            return "EXPIRED"
        if not key.active:
            return "DISABLED"
        own = ScopeSet.of(key.scopes) if key.scopes else None
        if key.app_id is None:
            effective = own or ScopeSet.full()
        else:
            app_scopes = self.app_scopes[key.app_id]
            of_app = ScopeSet.of(app_scopes) if app_scopes else ScopeSet.full()
            effective = of_app if own is None else of_app.intersect(own)
        if not all(effective.covers(scope) for scope in asked):
            return "INSUFFICIENT_SCOPE"
        return "VALID"

    def verdict(self, key: ModelKey, asked: list[str]) -> Code:
        return self.kp.verifier.verify(self.org_id, key.secret, asked).code

    # ---- rules -------------------------------------------------------------------------

    @rule(target=apps, scopes=SCOPES)
    def create_app(self, scopes: tuple[str, ...]) -> str:
        app = self.kp.apps.create(self.owner, f"app-{secrets.token_hex(4)}", "", scopes)
        self.app_scopes[app.id] = scopes
        return app.id

    @rule(target=keys, scopes=SCOPES, days=st.none() | st.integers(1, 3))
    def create_key(self, scopes: tuple[str, ...], days: int | None) -> str:
        return self._issue(None, scopes, days)

    @precondition(lambda self: bool(self.app_scopes))
    @rule(target=keys, data=st.data(), scopes=SCOPES, days=st.none() | st.integers(1, 3))
    def create_key_in_an_app(
        self, data: st.DataObject, scopes: tuple[str, ...], days: int | None
    ) -> str:
        app_id = data.draw(st.sampled_from(sorted(self.app_scopes)))
        return self._issue(app_id, scopes, days)

    def _issue(self, app_id: str | None, scopes: tuple[str, ...], days: int | None) -> str:
        issued = self.kp.keys.create(
            self.owner, NewKey(name="k", scopes=scopes, app_id=app_id, expires_in_days=days)
        )
        key = issued.view.key
        self.model[key.id] = ModelKey(issued.secret, app_id, scopes, key.expires_at, key.created_at)
        return key.id

    @rule(target=keys, key_id=keys, grace=st.sampled_from([0, 1, 30]))
    def rotate(self, key_id: str, grace: int) -> MultipleResults[str]:
        key = self.model[key_id]
        now = self.clock()
        refused = key.rotated or (key.expires_at is not None and key.expires_at <= now)
        if key.deleted or refused:
            with pytest.raises(NotFound if key.deleted else Conflict):
                self.kp.rotation.rotate(self.owner, key_id, grace * 3600)
            return multiple()
        rotated = self.kp.rotation.rotate(self.owner, key_id, grace * 3600)
        new = rotated.issued.view.key
        # The successor keeps the old key's lifetime from now (no org maximum here).
        if key.expires_at is None:
            assert new.expires_at is None
        else:
            assert new.expires_at is not None
            lifetime = new.expires_at - new.created_at
            assert abs(lifetime - (key.expires_at - key.created_at)) < timedelta(seconds=1)
        # The grace ends after ``grace`` hours, or sooner when the old key expires sooner
        # (the service read its clock a moment after ``now``).
        grace_end = now + timedelta(hours=grace)
        expected = grace_end if key.expires_at is None else min(key.expires_at, grace_end)
        assert abs(rotated.grace_ends_at - expected) < timedelta(seconds=1)
        key.expires_at = rotated.grace_ends_at
        key.rotated = True
        self.model[new.id] = ModelKey(
            rotated.issued.secret, key.app_id, key.scopes, new.expires_at, new.created_at
        )
        return multiple(new.id)

    @rule(key_id=keys, asked=ASKED)
    def verify(self, key_id: str, asked: list[str]) -> None:
        key = self.model[key_id]
        assert self.verdict(key, asked) == self.expected(key, asked)

    @rule(key_id=keys, active=st.booleans())
    def disable_or_enable(self, key_id: str, active: bool) -> None:
        key = self.model[key_id]
        changes = KeyChanges(status="active" if active else "inactive")
        if key.deleted:
            with pytest.raises(NotFound):
                self.kp.keys.update(self.owner, key_id, changes)
            return
        self.kp.keys.update(self.owner, key_id, changes)
        key.active = active

    @rule(app_id=apps, scopes=SCOPES)
    def change_app_scopes(self, app_id: str, scopes: tuple[str, ...]) -> None:
        if app_id not in self.app_scopes:
            with pytest.raises(NotFound):
                self.kp.apps.update(self.owner, app_id, AppChanges(scopes=scopes))
            return
        self.kp.apps.update(self.owner, app_id, AppChanges(scopes=scopes))
        self.app_scopes[app_id] = scopes

    @rule(hours=st.sampled_from([1, 12, 24, 49]))
    def let_time_pass(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule(key_id=consumes(keys))
    def delete_key(self, key_id: str) -> None:
        key = self.model[key_id]
        if key.deleted:
            with pytest.raises(NotFound):
                self.kp.keys.delete(self.owner, key_id)
            return
        self.kp.keys.delete(self.owner, key_id)
        key.deleted = True

    @rule(app_id=consumes(apps))
    def delete_app(self, app_id: str) -> None:
        deleted = self.kp.apps.delete(self.owner, app_id)
        in_app = {i for i, key in self.model.items() if key.app_id == app_id and not key.deleted}
        assert set(deleted) == in_app
        for key_id in in_app:
            self.model[key_id].deleted = True
        del self.app_scopes[app_id]

    @invariant()
    def every_verdict_is_the_models(self) -> None:
        for key_id, key in self.model.items():
            for asked in ([], ["apps:read"]):
                assert self.verdict(key, asked) == self.expected(key, asked), (key_id, asked)


@pytest.fixture(scope="module")
def keyplane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Keyplane, Clock]]:
    path: Path = tmp_path_factory.mktemp("machine") / "keyplane.db"
    clock = Clock()
    kp = build(Settings(database_url=f"sqlite:///{path}", secret_key=TEST_SECRET), clock=clock)
    yield kp, clock
    kp.close()


def test_every_verdict_follows_the_keys_lifecycle(keyplane: tuple[Keyplane, Clock]) -> None:
    Lifecycle.kp, Lifecycle.clock = keyplane
    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
