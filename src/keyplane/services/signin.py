"""Console sign-in: email and password, sessions, sign-out.

Failures are slowed down per account and per address (AttemptLimiter). The answer to a
wrong email and to a wrong password is the same, and takes the same time: an unknown email
is still checked against a real argon2 hash.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from keyplane.domain.errors import InvalidCredentials, Throttled
from keyplane.domain.ids import new_id
from keyplane.domain.models import ConsoleSession, User
from keyplane.domain.ports import AttemptLimiter, Clock, PasswordHasher, Store
from keyplane.services.common import Principal, record
from keyplane.services.users import principal_for, token_digest

SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    token: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True, slots=True)
class Resumed:
    user: User
    principal: Principal
    session: ConsoleSession


class SignInService:
    def __init__(
        self,
        store: Store,
        passwords: PasswordHasher,
        accounts: AttemptLimiter,
        addresses: AttemptLimiter,
        clock: Clock,
        monotonic: Callable[[], float],
    ) -> None:
        self._store = store
        self._passwords = passwords
        # Two limiters: an address (an office, a proxy) carries many people's typos, so it
        # gets more free attempts than one account, and a success does not clear it (else
        # an attacker's own account would reset the count for the address).
        self._accounts = accounts
        self._addresses = addresses
        self._clock = clock
        self._monotonic = monotonic
        # Checked when the email is unknown, so both failures cost one argon2 verification.
        self._decoy = passwords.hash(secrets.token_urlsafe(16))

    def sign_in(self, email: str, password: str, ip: str) -> SignedIn:
        email = email.strip().lower()
        account, address = [f"email:{email}"], [f"ip:{ip}"]
        tick = self._monotonic()
        wait = max(
            self._accounts.retry_after(account, tick), self._addresses.retry_after(address, tick)
        )
        if wait > 0:
            raise Throttled(wait)
        with self._store.read() as tx:
            user = tx.users.find_by_email(email)
        stored = user.password_hash if user is not None and user.password_hash else self._decoy
        if not self._passwords.verify(stored, password) or user is None or not user.password_hash:
            self._accounts.failed(account, self._monotonic())
            self._addresses.failed(address, self._monotonic())
            if user is not None:
                with self._store.transaction() as tx:
                    actor = principal_for(tx, user)
                    record(tx, actor, self._clock(), "user.sign_in_failed", "user", user.id, ip=ip)
            raise InvalidCredentials
        self._accounts.succeeded(account)
        now = self._clock()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session = ConsoleSession(
            id=new_id("ses"),
            digest=token_digest(token),
            user_id=user.id,
            org_id=user.org_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
            ip=ip[:64],
        )
        with self._store.transaction() as tx:
            tx.sessions.insert(session)
            actor = principal_for(tx, user)
            record(tx, actor, now, "user.sign_in", "user", user.id, ip=ip)
        return SignedIn(user, token, csrf, int(SESSION_LIFETIME.total_seconds()))

    def resume(self, token: str) -> Resumed | None:
        """The signed-in user behind a session cookie, or None (unknown or expired)."""
        digest = token_digest(token)
        with self._store.read() as tx:  # every page load: never queue behind a writer
            session = tx.sessions.find(digest)
            if session is None:
                return None
            expired = session.expires_at <= self._clock()
            user = None if expired else tx.users.get(session.org_id, session.user_id)
            if user is not None:
                return Resumed(user, principal_for(tx, user), session)
        if expired:
            with self._store.transaction() as tx:
                tx.sessions.delete(digest)
        return None

    def sign_out(self, token: str) -> None:
        with self._store.transaction() as tx:
            tx.sessions.delete(token_digest(token))
