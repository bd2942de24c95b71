"""Console sign-in: email and password, choosing an organization, sessions, sign-out.

The answer to a wrong email and to a wrong password is the same, and takes the same time:
an unknown email is still checked against a real argon2 hash.

Throttling (``keyplane.app`` sets these numbers). Failures are counted three ways, each
with exponential back-off (2^(n - free) seconds after ``free`` failures, capped at 15
minutes, forgotten after a quiet hour):

- per account *and* address (an IPv6 address counts as its /64), 5 free: the main
  throttle. A guesser at one address gets 5 tries, then waits 1, 2, 4 … seconds, then 15
  minutes per try (about 19 guesses in the first hour). A success from that address
  clears this count.
- per account, 50 free across every address: the ceiling against a guesser with many
  addresses; past it everyone (the owner too) waits. It is never cleared by a success,
  or an attacker's correct guess of another address' password... would not apply, but the
  owner signing in would hand the guesser 50 fresh tries.
- per address, 20 free across accounts (an office or a proxy carries many people's
  typos): against spraying one password over many accounts. Not cleared by a success
  either (else an attacker's own account would reset the address).

So knowing an email no longer locks its owner out: failures from elsewhere count against
the pair and the loose account ceiling, and the owner's address has no failures.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from keyplane.domain.errors import InvalidCredentials, KeyplaneError, NotFound, Throttled
from keyplane.domain.ids import new_id
from keyplane.domain.models import ConsoleSession, Identity, User
from keyplane.domain.ports import AttemptLimiter, Clock, PasswordHasher, Store, Transaction
from keyplane.services.common import Principal, record
from keyplane.services.users import account_subject, principal_for, token_digest

SESSION_LIFETIME = timedelta(hours=12)
# Expired sessions deleted by each successful sign-in: bounded work, and sign-ins come
# often enough that the table does not grow without end.
PURGE_BATCH = 100


class NoOrganization(KeyplaneError):
    """The password is right but no membership is accepted yet (every invitation pending)."""

    def __init__(self) -> None:
        super().__init__(
            "You are not a member of any organization yet: open the set-password link "
            "an administrator gave you."
        )


@dataclass(frozen=True, slots=True)
class Choice:
    """An organization a signed-in identity may act in."""

    user_id: str
    org_id: str
    org_name: str
    role: str


@dataclass(frozen=True, slots=True)
class Choosing:
    """A session's organizations, and its CSRF token (for the chooser's sign-out form)."""

    choices: list[Choice]
    csrf_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SignedIn:
    identity: Identity
    token: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_in: int
    # The membership the session acts as; None until the person chooses (several).
    user: User | None


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
        pairs: AttemptLimiter,
        accounts: AttemptLimiter,
        addresses: AttemptLimiter,
        clock: Clock,
        monotonic: Callable[[], float],
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._pairs = pairs
        self._accounts = accounts
        self._addresses = addresses
        self._clock = clock
        self._monotonic = monotonic
        # Checked when the email is unknown, so both failures cost one argon2 verification.
        self._decoy: str | None = None  # made on first need: a hash costs ~0.2 s at start

    def decoy(self) -> str:
        if self._decoy is None:  # a race makes two decoys; either serves
            self._decoy = self._passwords.hash(secrets.token_urlsafe(16))
        return self._decoy

    def sign_in(self, email: str, password: str, ip: str) -> SignedIn:
        """A session for a correct password: bound to the organization when there is one,
        waiting for ``choose`` when there are several."""
        email = email.strip().lower()
        account = [account_subject(email)]
        network = _network(ip)
        pair, address = [f"{account[0]} ip:{network}"], [f"ip:{network}"]
        tick = self._monotonic()
        wait = max(
            self._pairs.retry_after(pair, tick),
            self._accounts.retry_after(account, tick),
            self._addresses.retry_after(address, tick),
        )
        if wait > 0:
            raise Throttled(wait)
        with self._store.read() as tx:
            identity = tx.identities.find_by_email(email)
            members = tx.users.of_identity(identity.id) if identity is not None else []
        stored = identity.password_hash if identity and identity.password_hash else self.decoy()
        verified = self._passwords.verify(stored, password)
        if not verified or identity is None or identity.password_hash is None:
            tick = self._monotonic()
            self._pairs.failed(pair, tick)
            self._accounts.failed(account, tick)
            self._addresses.failed(address, tick)
            if members:
                now = self._clock()
                with self._store.transaction() as tx:
                    for member in members:
                        actor = replace(principal_for(tx, member), client_ip=ip)
                        record(tx, actor, now, "user.sign_in_failed", "user", member.id)
            raise InvalidCredentials
        self._pairs.succeeded(pair)
        usable = [m for m in members if m.can_sign_in]
        if not usable:
            raise NoOrganization
        chosen = usable[0] if len(usable) == 1 else None
        now = self._clock()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session = ConsoleSession(
            id=new_id("ses"),
            digest=token_digest(token),
            identity_id=identity.id,
            user_id=chosen.id if chosen else None,
            org_id=chosen.org_id if chosen else None,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
            ip=ip[:64],
        )
        with self._store.transaction() as tx:
            tx.sessions.delete_expired(now, PURGE_BATCH)
            tx.sessions.insert(session)
            if chosen is not None:
                signer = replace(principal_for(tx, chosen), client_ip=ip)
                record(tx, signer, now, "user.sign_in", "user", chosen.id)
        return SignedIn(identity, token, csrf, int(SESSION_LIFETIME.total_seconds()), chosen)

    def choosing(self, token: str) -> Choosing | None:
        """The organizations a session's identity may act in, or None (no valid session)."""
        with self._store.read() as tx:
            session = self._live(tx, token)
            if session is None:
                return None
            found = []
            for member in tx.users.of_identity(session.identity_id):
                org = tx.orgs.get(member.org_id)
                if member.can_sign_in and org is not None:
                    found.append(Choice(member.id, org.id, org.name, member.role))
            return Choosing(found, session.csrf_token)

    def csrf_token(self, token: str) -> str | None:
        """The CSRF token of a live session, chosen or not; None without one."""
        with self._store.read() as tx:
            session = self._live(tx, token)
            return session.csrf_token if session is not None else None

    def choose(self, token: str, user_id: str, ip: str) -> User:
        """Binds the session to one of its identity's memberships (also to switch later).

        NotFound for a membership that is not the identity's, or not accepted; NeedsSession
        when the session is unknown or expired.
        """
        now = self._clock()
        with self._store.transaction() as tx:
            session = self._live(tx, token)
            if session is None:
                raise NeedsSession
            member = next(
                (m for m in tx.users.of_identity(session.identity_id) if m.id == user_id), None
            )
            if member is None or not member.can_sign_in:
                raise NotFound("organization", user_id)
            tx.sessions.bind(session.digest, member.id, member.org_id)
            signer = replace(principal_for(tx, member), client_ip=ip)
            record(tx, signer, now, "user.sign_in", "user", member.id)
            return member

    def resume(self, token: str) -> Resumed | None:
        """The user behind a session cookie, or None (unknown, expired, or no organization
        chosen yet). An expired session is deleted on the way."""
        digest = token_digest(token)
        with self._store.read() as tx:  # every page load: never queue behind a writer
            session = tx.sessions.find(digest)
            if session is None:
                return None
            expired = session.expires_at <= self._clock()
            user = None
            if not expired and session.user_id is not None and session.org_id is not None:
                user = tx.users.get(session.org_id, session.user_id)
            if user is not None and user.can_sign_in:
                return Resumed(user, principal_for(tx, user), session)
        if expired:
            with self._store.transaction() as tx:
                tx.sessions.delete(digest)
        return None

    def sign_out(self, token: str) -> None:
        with self._store.transaction() as tx:
            tx.sessions.delete(token_digest(token))

    def _live(self, tx: Transaction, token: str) -> ConsoleSession | None:
        """The session behind a token unless unknown or expired (``resume`` and each
        sign-in's purge delete expired ones; this may run in a read transaction)."""
        session = tx.sessions.find(token_digest(token))
        if session is None or session.expires_at <= self._clock():
            return None
        return session


def _network(ip: str) -> str:
    """The unit an address is counted by: an IPv4 address, or an IPv6 /64 (one host is
    usually given a whole /64, so counting single IPv6 addresses would count nothing)."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class NeedsSession(KeyplaneError):
    """No valid session behind the cookie: sign in first."""
