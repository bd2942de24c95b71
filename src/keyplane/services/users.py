"""Console users: invite, change role, remove; set a password from a one-time link.

Roles are scope sets (domain/roles.py) and follow the keys' rule: nobody makes a user more
powerful than themselves. Ownership (making, demoting or removing an owner) also needs
``org:own``, which only owners hold; the last owner can be neither demoted nor removed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field, replace
from datetime import timedelta

from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import Conflict, InvalidInput, NotFound
from keyplane.domain.ids import new_id
from keyplane.domain.models import Page, Role, User
from keyplane.domain.ports import Clock, PasswordHasher, Store, Transaction
from keyplane.domain.roles import OWNERSHIP, ROLES, role_scopes
from keyplane.services.common import (
    UNSET,
    Principal,
    _Unset,
    check_cursor,
    check_limit,
    check_name,
    paginate,
    record,
)
from keyplane.services.orgs import check_email

PASSWORD_MIN = 12
PASSWORD_MAX = 1024
SETUP_LINK_LIFETIME = timedelta(hours=72)


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str
    name: str = ""
    role: Role = "viewer"
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class InvitedUser:
    user: User
    setup_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class UserChanges:
    name: str | _Unset = UNSET
    role: Role | _Unset = UNSET


def check_password(password: str, field_name: str = "password") -> str:
    if len(password) < PASSWORD_MIN:
        raise InvalidInput.field(field_name, f"must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput.field(field_name, f"must be at most {PASSWORD_MAX} characters")
    return password


def token_digest(token: str) -> str:
    """SHA-256 of a high-entropy random token (set-password links, session cookies)."""
    return hashlib.sha256(token.encode()).hexdigest()


def principal_for(tx: Transaction, user: User) -> Principal:
    catalogue = Catalogue(tx.resources.all(user.org_id))
    return Principal(user.org_id, user.id, role_scopes(user.role, catalogue))


class UserService:
    def __init__(self, store: Store, passwords: PasswordHasher, clock: Clock) -> None:
        self._store = store
        self._passwords = passwords
        self._clock = clock

    def create(self, principal: Principal, new: NewUser) -> InvitedUser:
        """A user with an initial password, or (without one) a one-time set-password token."""
        now = self._clock()
        email = check_email(new.email, "email")
        role = _check_role(new.role)
        password_hash = (
            self._passwords.hash(check_password(new.password)) if new.password is not None else None
        )
        with self._store.transaction() as tx:
            self._may_grant(tx, principal, role)
            if tx.users.find_by_email(email) is not None:
                raise Conflict(f"A user with email {email!r} already exists.", field="email")
            user = User(
                id=new_id("usr"),
                org_id=principal.org_id,
                email=email,
                name=check_name("name", new.name) if new.name.strip() else email.split("@")[0],
                role=role,
                created_at=now,
                password_hash=password_hash,
            )
            tx.users.insert(user)
            token = None
            if password_hash is None:
                token = secrets.token_urlsafe(32)
                tx.users.set_setup_token(user.id, token_digest(token), now + SETUP_LINK_LIFETIME)
            record(
                tx,
                principal,
                now,
                "user.create",
                "user",
                user.id,
                email=email,
                role=role,
                setup_link=token is not None,
            )
            return InvitedUser(user, token)

    def get(self, principal: Principal, user_id: str) -> User:
        with self._store.read() as tx:
            return _user(tx, principal.org_id, user_id)

    def page(self, principal: Principal, *, limit: int, cursor: str | None = None) -> Page[User]:
        check_limit(limit)
        after = check_cursor(cursor, "usr")
        with self._store.read() as tx:
            return paginate(
                lambda n: tx.users.page(principal.org_id, limit=n, after=after),
                limit,
                lambda u: u.id,
            )

    def update(self, principal: Principal, user_id: str, changes: UserChanges) -> User:
        now = self._clock()
        with self._store.transaction() as tx:
            user = _user(tx, principal.org_id, user_id)
            updated = user
            if not isinstance(changes.name, _Unset):
                updated = replace(updated, name=check_name("name", changes.name))
            if not isinstance(changes.role, _Unset) and changes.role != user.role:
                role = _check_role(changes.role)
                self._may_grant(tx, principal, role)
                if user.role == "owner":
                    _require_ownership(principal)
                    _not_last_owner(tx, user, "demoted")
                updated = replace(updated, role=role)
                tx.sessions.delete_for_user(user.id)  # new powers apply from a new sign-in
            tx.users.update(updated)
            record(
                tx,
                principal,
                now,
                "user.update",
                "user",
                user.id,
                name=updated.name,
                role=updated.role,
                previous_role=user.role,
            )
            return updated

    def delete(self, principal: Principal, user_id: str) -> None:
        now = self._clock()
        with self._store.transaction() as tx:
            user = _user(tx, principal.org_id, user_id)
            if user.role == "owner":
                _require_ownership(principal)
                _not_last_owner(tx, user, "removed")
            tx.sessions.delete_for_user(user.id)
            tx.users.delete(principal.org_id, user.id)
            record(tx, principal, now, "user.delete", "user", user.id, email=user.email)

    def setup_link_is_valid(self, token: str) -> bool:
        with self._store.read() as tx:
            found = tx.users.find_by_setup_digest(token_digest(token))
        return found is not None and found[1] > self._clock()

    def set_password_with_token(self, token: str, password: str) -> User:
        """Consumes a set-password link; answers NotFound for unknown, used or stale links."""
        now = self._clock()
        password_hash = self._passwords.hash(check_password(password))
        with self._store.transaction() as tx:
            found = tx.users.find_by_setup_digest(token_digest(token))
            if found is None or found[1] <= now:
                raise NotFound("set-password link", "(this link)")
            user = found[0]
            tx.users.set_password(user.id, password_hash)
            tx.sessions.delete_for_user(user.id)
            actor = Principal(user.org_id, user.id, role_scopes(user.role, Catalogue([])))
            record(tx, actor, now, "user.set_password", "user", user.id)
            return user

    def set_password(self, user_id: str, password: str) -> None:
        """For bootstrapping (the CLI): set a password directly."""
        password_hash = self._passwords.hash(check_password(password))
        with self._store.transaction() as tx:
            tx.users.set_password(user_id, password_hash)
            tx.sessions.delete_for_user(user_id)

    @staticmethod
    def _may_grant(tx: Transaction, principal: Principal, role: Role) -> None:
        if role == "owner":
            _require_ownership(principal)
        scopes = role_scopes(role, Catalogue(tx.resources.all(principal.org_id)))
        principal.ensure_can_grant("role", scopes)


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidInput.field("role", f"must be one of {', '.join(ROLES)}")
    return role


def _require_ownership(principal: Principal) -> None:
    principal.require(OWNERSHIP)


def _not_last_owner(tx: Transaction, user: User, verb: str) -> None:
    if tx.users.count_owners(user.org_id) <= 1:
        raise Conflict(
            f"{user.email} is the last owner of this organization and cannot be {verb}; "
            "make another user an owner first."
        )


def _user(tx: Transaction, org_id: str, user_id: str) -> User:
    user = tx.users.get(org_id, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user
