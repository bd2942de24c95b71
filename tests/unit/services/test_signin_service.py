"""SignInService with an injected monotonic clock over a real SQLite store: the three
failure counts, the capped back-off, choosing an organization, and purging sessions."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import argon2
import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.errors import InvalidCredentials, InvalidInput, NotFound, Throttled
from keyplane.domain.scopes import ScopeSet
from keyplane.memory import InProcessAttemptLimiter
from keyplane.services.common import Principal
from keyplane.services.signin import (
    PURGE_BATCH,
    SESSION_LIFETIME,
    NeedsSession,
    NoOrganization,
    SignInService,
)
from keyplane.services.users import NewUser, UserService, token_digest
from keyplane.settings import Settings
from keyplane.storage.store import SqlStore
from keyplane.storage.tables import console_sessions

from conftest import TEST_SECRET, Clock

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"
CAP = 900.0


class CheapArgon2:
    """argon2id at its lowest cost: the same code paths, milliseconds instead of seconds on
    a busy machine (the limiter, not the hash, is under test)."""

    def __init__(self) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except argon2.exceptions.VerificationError:
            return False


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    kp: Keyplane
    clock: Clock
    ticks: Ticks
    signin: SignInService
    users: UserService

    def org(self) -> Principal:
        made = self.kp.orgs.create(f"Org {secrets.token_hex(3)}", fresh_email("owner"))
        self.users.set_password(made.owner.id, PASSWORD)
        return Principal(made.org.id, made.owner.id, ScopeSet.full())

    def member(self, owner: Principal, email: str | None = None) -> str:
        """A new person signing in to ``owner``'s organization, or (``email``) a person
        who signs in elsewhere joining it through its link."""
        if email is None:
            email = fresh_email("member")
            self.users.create(owner, NewUser(email=email, role="developer", password=PASSWORD))
            return email
        invited = self.users.create(owner, NewUser(email=email, role="developer"))
        assert invited.setup_token is not None
        self.users.set_password_with_token(invited.setup_token, PASSWORD)
        return email


def fresh_email(label: str) -> str:
    return f"{label}-{secrets.token_hex(4)}@example.com"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Keyplane, Clock]]:
    path: Path = tmp_path_factory.mktemp("signin") / "keyplane.db"
    clock = Clock()
    kp = build(Settings(database_url=f"sqlite:///{path}", secret_key=TEST_SECRET), clock=clock)
    yield kp, clock
    kp.close()


@pytest.fixture
def world(base: tuple[Keyplane, Clock]) -> World:
    kp, clock = base
    ticks = Ticks()
    passwords = CheapArgon2()
    accounts = InProcessAttemptLimiter(free=50, cap=CAP)
    signin = SignInService(
        kp.store,
        passwords,
        pairs=InProcessAttemptLimiter(free=5, cap=CAP),
        accounts=accounts,
        addresses=InProcessAttemptLimiter(free=20, cap=CAP),
        clock=clock,
        monotonic=ticks,
    )
    users = UserService(kp.store, passwords, clock, accounts, ticks)
    return World(kp, clock, ticks, signin, users)


def fail(world: World, email: str, ip: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            world.signin.sign_in(email, WRONG, ip)


def test_failures_from_one_address_do_not_keep_the_owner_out_from_another(world: World) -> None:
    email = world.member(world.org())
    fail(world, email, "198.51.100.1", times=5)

    with pytest.raises(Throttled):
        world.signin.sign_in(email, PASSWORD, "198.51.100.1")
    assert world.signin.sign_in(email, PASSWORD, "203.0.113.7").user is not None


def test_an_ipv6_address_is_counted_with_the_rest_of_its_64(world: World) -> None:
    email = world.member(world.org())
    for host in range(5):
        fail(world, email, f"2001:db8:1:2::{host + 1:x}")

    with pytest.raises(Throttled):
        world.signin.sign_in(email, PASSWORD, "2001:db8:1:2:ffff::9")
    assert world.signin.sign_in(email, PASSWORD, "2001:db8:1:3::1").user is not None


def test_a_success_clears_the_count_of_its_own_address(world: World) -> None:
    email = world.member(world.org())
    fail(world, email, "198.51.100.2", times=4)
    world.signin.sign_in(email, PASSWORD, "198.51.100.2")

    fail(world, email, "198.51.100.2", times=4)  # four more free tries, not a throttle
    assert world.signin.sign_in(email, PASSWORD, "198.51.100.2").user is not None


def test_the_account_ceiling_slows_every_address_once_reached(world: World) -> None:
    email = world.member(world.org())
    for n in range(50):
        fail(world, email, f"10.9.{n // 200}.{n % 200 + 1}")

    with pytest.raises(Throttled):
        world.signin.sign_in(email, PASSWORD, "203.0.113.8")
    world.ticks.now += 1.5  # the ceiling's first wait is one second
    assert world.signin.sign_in(email, PASSWORD, "203.0.113.8").user is not None


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(5, 1.0), (6, 2.0), (9, 16.0), (14, 512.0), (15, CAP), (40, CAP)],
)
def test_the_back_off_doubles_up_to_fifteen_minutes(failures: int, wait: float) -> None:
    limiter = InProcessAttemptLimiter(free=5, cap=CAP)
    for _ in range(failures):
        limiter.failed(["s"], 0.0)

    assert limiter.retry_after(["s"], 0.0) == wait
    assert limiter.retry_after(["s"], wait) == 0.0


def test_a_quiet_hour_forgets_the_failures() -> None:
    limiter = InProcessAttemptLimiter(free=5, cap=CAP, forget_after=3600)
    for _ in range(20):
        limiter.failed(["s"], 0.0)

    assert limiter.retry_after(["s"], CAP - 1) > 0
    assert limiter.retry_after(["s"], 3601) == 0.0
    limiter.failed(["s"], 3601)
    assert limiter.retry_after(["s"], 3601) == 0.0  # counting from one again


def test_a_limiter_that_would_forget_before_its_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="forget_after"):
        InProcessAttemptLimiter(cap=900, forget_after=60)


def test_guessing_stays_slow_from_one_address(world: World) -> None:
    """Over an hour, one address gets a handful of guesses at one account, not hundreds."""
    email = world.member(world.org())
    guesses, start = 0, world.ticks.now
    while world.ticks.now - start < 3600:
        try:
            world.signin.sign_in(email, WRONG, "198.51.100.3")
        except Throttled as exc:
            world.ticks.now += exc.retry_after
            continue
        except InvalidCredentials:
            guesses += 1

    assert guesses <= 20


def test_one_membership_signs_in_bound_to_its_organization(world: World) -> None:
    owner = world.org()
    email = world.member(owner)

    signed_in = world.signin.sign_in(email, PASSWORD, "198.51.100.4")

    assert signed_in.user is not None
    assert signed_in.user.org_id == owner.org_id
    resumed = world.signin.resume(signed_in.token)
    assert resumed is not None
    assert resumed.principal.org_id == owner.org_id


def test_several_memberships_wait_for_a_choice(world: World) -> None:
    first, second = world.org(), world.org()
    email = world.member(first)
    world.member(second, email)

    signed_in = world.signin.sign_in(email, PASSWORD, "198.51.100.5")

    assert signed_in.user is None
    assert world.signin.resume(signed_in.token) is None  # no console page until chosen
    choosing = world.signin.choosing(signed_in.token)
    assert choosing is not None
    choices = choosing.choices
    assert {c.org_id for c in choices} == {first.org_id, second.org_id}
    chosen = next(c for c in choices if c.org_id == second.org_id)
    world.signin.choose(signed_in.token, chosen.user_id, "198.51.100.5")
    resumed = world.signin.resume(signed_in.token)
    assert resumed is not None
    assert resumed.principal.org_id == second.org_id


def test_a_session_cannot_choose_a_membership_of_someone_else(world: World) -> None:
    first, second = world.org(), world.org()
    email = world.member(first)
    world.member(second, email)
    stranger = world.member(second)
    signed_in = world.signin.sign_in(email, PASSWORD, "198.51.100.6")
    theirs = world.signin.sign_in(stranger, PASSWORD, "198.51.100.6").user
    assert theirs is not None

    with pytest.raises(NotFound):
        world.signin.choose(signed_in.token, theirs.id, "198.51.100.6")
    with pytest.raises(NeedsSession):
        world.signin.choose("not-a-session", theirs.id, "198.51.100.6")
    assert world.signin.resume(signed_in.token) is None


def test_a_correct_password_without_an_accepted_membership_says_so(world: World) -> None:
    first, second = world.org(), world.org()
    email = world.member(first)
    invited = world.users.create(second, NewUser(email=email))  # pending: its link unused
    member = world.signin.sign_in(email, PASSWORD, "198.51.100.7").user
    assert member is not None
    world.users.delete(first, member.id)

    with pytest.raises(NoOrganization):
        world.signin.sign_in(email, PASSWORD, "198.51.100.7")
    assert invited.setup_token is not None


def test_a_sign_in_purges_expired_sessions_a_batch_at_a_time(world: World) -> None:
    email = world.member(world.org())
    tokens = [world.signin.sign_in(email, PASSWORD, "198.51.100.8").token for _ in range(3)]
    world.clock.advance(SESSION_LIFETIME + timedelta(minutes=1))

    world.signin.sign_in(email, PASSWORD, "198.51.100.8")

    store = world.kp.store
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        left = {row.digest for row in conn.execute(console_sessions.select())}
    assert not left & {token_digest(t) for t in tokens}
    assert PURGE_BATCH >= 1


def test_wrong_passwords_on_links_count_against_the_account_ceiling(world: World) -> None:
    """Burning a link and inviting again is no way around sign-in's throttle."""
    owner, other = world.org(), world.org()
    email = world.member(owner)
    for _ in range(50):
        invited = world.users.create(other, NewUser(email=email))
        assert invited.setup_token is not None
        with pytest.raises(InvalidInput):
            world.users.set_password_with_token(invited.setup_token, WRONG)
        world.users.delete(other, invited.user.id)

    last = world.users.create(other, NewUser(email=email))
    assert last.setup_token is not None
    with pytest.raises(Throttled):
        world.users.set_password_with_token(last.setup_token, PASSWORD)
    with pytest.raises(Throttled):
        world.signin.sign_in(email, PASSWORD, "198.51.100.9")
    world.ticks.now += 1.5
    world.users.set_password_with_token(last.setup_token, PASSWORD)  # the link still works
    assert world.users.get(other, last.user.id).can_sign_in
