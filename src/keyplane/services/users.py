"""Console users: invite, change role, remove; set a password from a one-time link.

A person is an identity (email, password) with a membership per organization (``usr_…``,
name, role). Roles are scope sets (domain/roles.py) and follow the keys' rule: nobody makes
a user more powerful than themselves. Ownership (making, demoting or removing an owner)
also needs ``org:own``, which only owners hold; the last owner can be neither demoted nor
removed.

Who may set an identity's password, and when a membership becomes usable
---------------------------------------------------------------------------
An address is shared by every organization, and keyplane sends no mail: a set-password link
goes to an administrator, who passes it on. Whoever holds a link can use it. So the rules
are about what one organization's administrator can reach through their own link or an
initial password, and what organization A learns from adding an address:

1. An organization may set (initial password) or let a link set an identity's password only
   while the identity has none. Once set, only the operator (``keyplane users
   reset-password``) changes it; no organization can choose or learn it.
2. A membership is usable (offered at sign-in) only once accepted: created together with a
   password chosen by the same organization, or through its own link. A link used while the
   identity already has a password asks for that password instead of a new one: holding A's
   link without the password, or the password without A's link, is not enough. So an
   administrator who chose a password through their own link cannot reach the person's
   memberships elsewhere, and another organization's link cannot change it.
3. Adding an address therefore answers alike whether or not it has an identity elsewhere:
   a pending membership with a set-password link, ``has_password`` false. The one exception:
   an initial password for an address that already has one cannot be set (rule 1), and the
   answer is a link as if none had been given. Answering "password set" would leave a
   membership nobody can accept. This tells the caller only that the address can already
   sign in somewhere on this keyplane, never where; a caller who does not choose passwords
   (the console never does) learns nothing.
4. A wrong password on a link's confirmation burns the link (the membership stays pending
   until re-invited) and counts against the account's sign-in ceiling, so links are no
   faster a way to guess a password than the sign-in form.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Literal

from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import Conflict, InvalidInput, NotFound, Throttled
from keyplane.domain.ids import new_id
from keyplane.domain.models import Identity, Page, Role, User
from keyplane.domain.ports import AttemptLimiter, Clock, PasswordHasher, Store, Transaction
from keyplane.domain.roles import OWNERSHIP, ROLES, role_scopes
from keyplane.domain.scopes import ScopeSet
from keyplane.services.common import (
    UNSET,
    Principal,
    _Unset,
    check_cursor,
    check_limit,
    check_name,
    diff,
    paginate,
    record,
)
from keyplane.services.orgs import check_email

PASSWORD_MIN = 12
PASSWORD_MAX = 1024
SETUP_LINK_LIFETIME = timedelta(hours=72)
# The actor of audit events written by the operator's command line.
OPERATOR = "operator"

SetupLink = Literal["choose", "confirm"]


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
    return Principal(user.org_id, user.id, role_scopes(user.role, catalogue), actor_name=user.name)


def account_subject(email: str) -> str:
    """The attempt limiter's subject for an address (shared with sign-in)."""
    return f"email:{email}"


class UserService:
    def __init__(
        self,
        store: Store,
        passwords: PasswordHasher,
        clock: Clock,
        accounts: AttemptLimiter,
        monotonic: Callable[[], float],
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._clock = clock
        # Sign-in's per-account ceiling: a wrong password on a link counts against it, so
        # burning a link and inviting again is no faster a way to guess than signing in.
        self._accounts = accounts
        self._monotonic = monotonic

    def create(self, principal: Principal, new: NewUser) -> InvitedUser:
        """A member with an initial password, or (without one) a one-time set-password token.

        Answers the same whether or not the address has an identity elsewhere (module
        docstring, rules 1-3).
        """
        now = self._clock()
        email = check_email(new.email, "email")
        role = _check_role(new.role)
        name = check_name("name", new.name) if new.name.strip() else email.split("@")[0]
        password_hash = (
            self._passwords.hash(check_password(new.password)) if new.password is not None else None
        )
        with self._store.transaction() as tx:
            self._may_grant(tx, principal, role)
            identity = tx.identities.find_by_email(email)
            if identity is None:
                identity = Identity(new_id("idn"), email, now, password_hash)
                tx.identities.insert(identity)
                password_set = password_hash is not None
            else:
                if tx.users.find_in_org(principal.org_id, identity.id) is not None:
                    raise Conflict(
                        f"{email!r} is already a member of this organization.", field="email"
                    )
                password_set = (
                    password_hash is not None
                    and identity.password_hash is None
                    and tx.identities.set_first_password(identity.id, password_hash)
                )
            user = User(
                id=new_id("usr"),
                org_id=principal.org_id,
                email=email,
                name=name,
                role=role,
                created_at=now,
                identity_id=identity.id,
                password_hash=password_hash if password_set else identity.password_hash,
                pending=not password_set,
            )
            tx.users.insert(user)
            token = None
            if user.pending:
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
            if password_set:
                record(tx, principal, now, "user.password_set", "user", user.id, via="initial")
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
                target_name=updated.name,
                changes=diff(user, updated, ("name", "role")),
            )
            return updated

    def delete(self, principal: Principal, user_id: str) -> None:
        """Ends a membership; the identity goes with its last one."""
        now = self._clock()
        with self._store.transaction() as tx:
            user = _user(tx, principal.org_id, user_id)
            if user.role == "owner":
                _require_ownership(principal)
                _not_last_owner(tx, user, "removed")
            tx.sessions.delete_for_user(user.id)
            tx.users.delete(principal.org_id, user.id)
            tx.identities.delete_if_unused(user.identity_id)
            record(tx, principal, now, "user.delete", "user", user.id, email=user.email)

    def setup_link(self, token: str) -> SetupLink | None:
        """What a set-password link asks for, or None for an unknown, used or stale link."""
        with self._store.read() as tx:
            found = tx.users.find_by_setup_digest(token_digest(token))
        if found is None or found[1] <= self._clock():
            return None
        return "confirm" if found[0].password_hash is not None else "choose"

    def set_password_with_token(self, token: str, password: str) -> User:
        """Uses a set-password link: chooses the identity's first password, or (when it has
        one) checks it. Either way the link's membership is accepted and the link is spent.

        NotFound for unknown, used or stale links; InvalidInput (field ``password``) for a
        wrong password on a confirmation, which also burns the link (module docstring) and
        counts as a failed sign-in of the account; Throttled while the account is.
        """
        now = self._clock()
        digest = token_digest(token)
        with self._store.read() as tx:
            found = tx.users.find_by_setup_digest(digest)
        if found is None or found[1] <= now:
            raise NotFound("set-password link", "(this link)")
        existing = found[0].password_hash
        account = [account_subject(found[0].email)]
        # argon2 outside the transaction: it takes tens of milliseconds.
        if existing is None:
            new_hash: str | None = self._passwords.hash(check_password(password))
            confirmed = True
        else:
            wait = self._accounts.retry_after(account, self._monotonic())
            if wait > 0:
                raise Throttled(wait)
            new_hash, confirmed = None, self._passwords.verify(existing, password)
            if not confirmed:
                self._accounts.failed(account, self._monotonic())
        with self._store.transaction() as tx:
            found = tx.users.find_by_setup_digest(digest)
            if found is None or found[1] <= now or found[0].password_hash != existing:
                raise NotFound("set-password link", "(this link)")  # used meanwhile
            user = found[0]
            actor = Principal(user.org_id, user.id, role_scopes(user.role, Catalogue([])))
            if not confirmed:
                tx.users.set_setup_token(user.id, None, None)
                record(tx, actor, now, "user.accept_failed", "user", user.id)
            else:
                if new_hash is not None and not tx.identities.set_first_password(
                    user.identity_id, new_hash
                ):
                    raise NotFound("set-password link", "(this link)")  # raced another link
                tx.users.activate(user.id)
                if new_hash is not None:
                    tx.sessions.delete_for_identity(user.identity_id)
                    record(tx, actor, now, "user.password_set", "user", user.id, via="link")
                record(tx, actor, now, "user.accept", "user", user.id)
        if not confirmed:
            raise InvalidInput.field(
                "password",
                "is not the password of this address; this link no longer works, ask for a new one",
            )
        return replace(user, pending=False, password_hash=new_hash or existing)

    def set_password(self, user_id: str, password: str) -> None:
        """For the operator (the CLI): set the password of the identity behind a membership
        and accept that membership."""
        password_hash = self._passwords.hash(check_password(password))
        with self._store.transaction() as tx:
            user = tx.users.find_by_id(user_id)
            if user is None:
                raise NotFound("user", user_id)
            tx.users.activate(user_id)
            self._operator_sets_password(tx, user.identity_id, password_hash)

    def reset_password(self, email: str, password: str, org_id: str | None = None) -> Identity:
        """For the operator (``keyplane users reset-password``): a new password for the
        identity with this email, all of its console sessions ended. With ``org_id`` the
        identity must be a member there, and that membership is accepted."""
        address = check_email(email, "email")
        password_hash = self._passwords.hash(check_password(password))
        with self._store.transaction() as tx:
            identity = tx.identities.find_by_email(address)
            if identity is None:
                raise NotFound("user with the email", address)
            if org_id is not None:
                member = tx.users.find_in_org(org_id, identity.id)
                if member is None:
                    raise NotFound(f"member of {org_id!r} with the email", address)
                tx.users.activate(member.id)
            self._operator_sets_password(tx, identity.id, password_hash)
            return replace(identity, password_hash=password_hash)

    def _operator_sets_password(
        self, tx: Transaction, identity_id: str, password_hash: str
    ) -> None:
        now = self._clock()
        tx.identities.set_password(identity_id, password_hash)
        tx.sessions.delete_for_identity(identity_id)
        # Every organization of the identity sees the event: each of them is affected.
        for member in tx.users.of_identity(identity_id):
            operator = Principal(member.org_id, OPERATOR, ScopeSet.full())
            record(tx, operator, now, "user.password_set", "user", member.id, via="operator")

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
