"""SqlStore: the Store port on SQLAlchemy Core, for SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from keyplane.domain.catalogue import Resource
from keyplane.domain.errors import Conflict
from keyplane.domain.models import (
    ApiKey,
    App,
    AuditEvent,
    ConsoleSession,
    KeyStatus,
    Organization,
    Profile,
    User,
)
from keyplane.storage.tables import (
    api_keys,
    apps,
    audit_events,
    console_sessions,
    organizations,
    profiles,
    resources,
    users,
)


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        try:
            with self.engine.begin() as conn:
                yield SqlTransaction(conn)
        except IntegrityError as exc:
            # Services check uniqueness first; this is the race between two writers.
            raise Conflict("A concurrent change conflicts with this one; retry it.") from exc

    def record_last_used(self, used: Mapping[str, datetime]) -> None:
        with self.transaction() as tx:
            tx.keys.record_last_used(used)


class SqlTransaction:
    def __init__(self, conn: Connection) -> None:
        self.orgs = SqlOrgRepository(conn)
        self.users = SqlUserRepository(conn)
        self.keys = SqlKeyRepository(conn)
        self.apps = SqlAppRepository(conn)
        self.profiles = SqlProfileRepository(conn)
        self.resources = SqlResourceRepository(conn)
        self.audit = SqlAuditRepository(conn)
        self.sessions = SqlSessionRepository(conn)


class SqlOrgRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str) -> Organization | None:
        row = self._conn.execute(select(organizations).where(organizations.c.id == org_id)).first()
        return _org(row) if row else None

    def find_by_name(self, name: str) -> Organization | None:
        query = (
            select(organizations).where(organizations.c.name == name).order_by(organizations.c.id)
        )
        row = self._conn.execute(query).first()
        return _org(row) if row else None

    def insert(self, org: Organization) -> None:
        self._conn.execute(insert(organizations).values(**_fields(org)))

    def update(self, org: Organization) -> None:
        values = _fields(org)
        del values["id"], values["created_at"]
        self._conn.execute(
            update(organizations).where(organizations.c.id == org.id).values(**values)
        )


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, user_id: str) -> User | None:
        query = select(users).where(users.c.org_id == org_id, users.c.id == user_id)
        row = self._conn.execute(query).first()
        return _user(row) if row else None

    def find_by_email(self, email: str) -> User | None:
        row = self._conn.execute(select(users).where(users.c.email == email)).first()
        return _user(row) if row else None

    def find_owner(self, org_id: str) -> User | None:
        query = (
            select(users)
            .where(users.c.org_id == org_id, users.c.role == "owner")
            .order_by(users.c.id)
        )
        row = self._conn.execute(query).first()
        return _user(row) if row else None

    def find_by_setup_digest(self, digest: str) -> tuple[User, datetime] | None:
        row = self._conn.execute(select(users).where(users.c.setup_digest == digest)).first()
        if row is None or row.setup_expires_at is None:
            return None
        return _user(row), row.setup_expires_at

    def page(self, org_id: str, *, limit: int, after: str | None) -> list[User]:
        query = select(users).where(users.c.org_id == org_id)
        if after is not None:
            query = query.where(users.c.id < after)
        rows = self._conn.execute(query.order_by(users.c.id.desc()).limit(limit))
        return [_user(row) for row in rows]

    def count_owners(self, org_id: str) -> int:
        query = select(func.count()).where(users.c.org_id == org_id, users.c.role == "owner")
        return int(self._conn.scalar(query) or 0)

    def insert(self, user: User) -> None:
        self._conn.execute(insert(users).values(**_fields(user)))

    def update(self, user: User) -> None:
        query = update(users).where(users.c.org_id == user.org_id, users.c.id == user.id)
        self._conn.execute(query.values(name=user.name, role=user.role))

    def set_password(self, user_id: str, password_hash: str) -> None:
        query = update(users).where(users.c.id == user_id)
        self._conn.execute(
            query.values(password_hash=password_hash, setup_digest=None, setup_expires_at=None)
        )

    def set_setup_token(
        self, user_id: str, digest: str | None, expires_at: datetime | None
    ) -> None:
        query = update(users).where(users.c.id == user_id)
        self._conn.execute(query.values(setup_digest=digest, setup_expires_at=expires_at))

    def delete(self, org_id: str, user_id: str) -> None:
        self._conn.execute(delete(users).where(users.c.org_id == org_id, users.c.id == user_id))


class SqlSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(self, session: ConsoleSession) -> None:
        self._conn.execute(insert(console_sessions).values(**_fields(session)))

    def find(self, digest: str) -> ConsoleSession | None:
        query = select(console_sessions).where(console_sessions.c.digest == digest)
        row = self._conn.execute(query).first()
        return ConsoleSession(**dict(row._mapping)) if row else None

    def delete(self, digest: str) -> None:
        self._conn.execute(delete(console_sessions).where(console_sessions.c.digest == digest))

    def delete_for_user(self, user_id: str) -> None:
        self._conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id))


class SqlKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, key_id: str) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.org_id == org_id, api_keys.c.id == key_id)
        row = self._conn.execute(query).first()
        return _key(row) if row else None

    def find_by_digest(self, digest: str) -> ApiKey | None:
        row = self._conn.execute(select(api_keys).where(api_keys.c.digest == digest)).first()
        return _key(row) if row else None

    def page(
        self,
        org_id: str,
        *,
        now: datetime,
        limit: int,
        after: str | None,
        status: KeyStatus | None,
        app_id: str | None,
    ) -> list[ApiKey]:
        c = api_keys.c
        query = select(api_keys).where(c.org_id == org_id)
        if after is not None:
            query = query.where(c.id < after)
        if app_id is not None:
            query = query.where(c.app_id == app_id)
        live = or_(c.expires_at.is_(None), c.expires_at > now)
        if status == "expired":
            query = query.where(and_(c.expires_at.is_not(None), c.expires_at <= now))
        elif status is not None:
            query = query.where(c.status == status, live)
        rows = self._conn.execute(query.order_by(c.id.desc()).limit(limit))
        return [_key(row) for row in rows]

    def insert(self, key: ApiKey) -> None:
        self._conn.execute(insert(api_keys).values(**_key_fields(key)))

    def update(self, key: ApiKey) -> None:
        values = _key_fields(key)
        for frozen in (
            "id",
            "org_id",
            "name",
            "digest",
            "digest_version",
            "masked_key",
            "environment",
            "scopes",
            "app_id",
            "created_at",
            "created_by",
            "last_used_at",
        ):
            del values[frozen]
        query = update(api_keys).where(api_keys.c.org_id == key.org_id, api_keys.c.id == key.id)
        self._conn.execute(query.values(**values))

    def delete(self, org_id: str, key_id: str) -> bool:
        query = delete(api_keys).where(api_keys.c.org_id == org_id, api_keys.c.id == key_id)
        return self._conn.execute(query).rowcount > 0

    def ids_with_profile(self, org_id: str, profile_id: str, limit: int) -> list[str]:
        c = api_keys.c
        query = select(c.id).where(c.org_id == org_id, c.profile_id == profile_id).order_by(c.id)
        return list(self._conn.scalars(query.limit(limit)))

    def ids_in_app(self, org_id: str, app_id: str) -> list[str]:
        c = api_keys.c
        query = select(c.id).where(c.org_id == org_id, c.app_id == app_id).order_by(c.id)
        return list(self._conn.scalars(query))

    def scoped(self, org_id: str) -> list[tuple[str, tuple[str, ...]]]:
        query = select(api_keys.c.id, api_keys.c.scopes).where(api_keys.c.org_id == org_id)
        return [(row.id, tuple(row.scopes)) for row in self._conn.execute(query) if row.scopes]

    def record_last_used(self, used: Mapping[str, datetime]) -> None:
        query = (
            update(api_keys)
            .where(api_keys.c.id == bindparam("key_id"))
            .values(last_used_at=bindparam("used_at"))
        )
        params = [{"key_id": key_id, "used_at": at} for key_id, at in used.items()]
        self._conn.execute(query, params)


def _key_count() -> Any:
    return (
        select(func.count())
        .where(api_keys.c.app_id == apps.c.id)
        .correlate(apps)
        .scalar_subquery()
        .label("key_count")
    )


class SqlAppRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, app_id: str) -> App | None:
        query = select(apps, _key_count()).where(apps.c.org_id == org_id, apps.c.id == app_id)
        row = self._conn.execute(query).first()
        return _app(row) if row else None

    def find_by_name(self, org_id: str, name: str) -> App | None:
        query = select(apps, _key_count()).where(apps.c.org_id == org_id, apps.c.name == name)
        row = self._conn.execute(query).first()
        return _app(row) if row else None

    def page(self, org_id: str, *, limit: int, after: str | None) -> list[App]:
        query = select(apps, _key_count()).where(apps.c.org_id == org_id)
        if after is not None:
            query = query.where(apps.c.id < after)
        rows = self._conn.execute(query.order_by(apps.c.id.desc()).limit(limit))
        return [_app(row) for row in rows]

    def insert(self, app: App) -> None:
        values = _fields(app)
        del values["key_count"]
        self._conn.execute(insert(apps).values(**values))

    def update(self, app: App) -> None:
        values = {
            k: v
            for k, v in _fields(app).items()
            if k in ("name", "description", "scopes", "updated_at")
        }
        query = update(apps).where(apps.c.org_id == app.org_id, apps.c.id == app.id)
        self._conn.execute(query.values(**values))

    def delete(self, org_id: str, app_id: str) -> None:
        # Keys go first explicitly: SQLite enforces ON DELETE CASCADE only with a pragma,
        # and being explicit keeps the rule visible here.
        self._conn.execute(
            delete(api_keys).where(api_keys.c.org_id == org_id, api_keys.c.app_id == app_id)
        )
        self._conn.execute(delete(apps).where(apps.c.org_id == org_id, apps.c.id == app_id))

    def scoped(self, org_id: str) -> list[tuple[str, tuple[str, ...]]]:
        query = select(apps.c.id, apps.c.scopes).where(apps.c.org_id == org_id)
        return [(row.id, tuple(row.scopes)) for row in self._conn.execute(query) if row.scopes]


class SqlProfileRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, profile_id: str) -> Profile | None:
        query = select(profiles).where(profiles.c.org_id == org_id, profiles.c.id == profile_id)
        row = self._conn.execute(query).first()
        return _profile(row) if row else None

    def find_by_name(self, org_id: str, name: str) -> Profile | None:
        query = select(profiles).where(profiles.c.org_id == org_id, profiles.c.name == name)
        row = self._conn.execute(query).first()
        return _profile(row) if row else None

    def page(self, org_id: str, *, limit: int, after: str | None) -> list[Profile]:
        query = select(profiles).where(profiles.c.org_id == org_id)
        if after is not None:
            query = query.where(profiles.c.id < after)
        rows = self._conn.execute(query.order_by(profiles.c.id.desc()).limit(limit))
        return [_profile(row) for row in rows]

    def insert(self, profile: Profile) -> None:
        self._conn.execute(insert(profiles).values(**_fields(profile)))

    def update(self, profile: Profile) -> None:
        values = _fields(profile)
        del values["id"], values["org_id"], values["created_at"]
        query = update(profiles).where(
            profiles.c.org_id == profile.org_id, profiles.c.id == profile.id
        )
        self._conn.execute(query.values(**values))

    def delete(self, org_id: str, profile_id: str) -> None:
        self._conn.execute(
            delete(profiles).where(profiles.c.org_id == org_id, profiles.c.id == profile_id)
        )


class SqlResourceRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def all(self, org_id: str) -> list[Resource]:
        query = select(resources).where(resources.c.org_id == org_id).order_by(resources.c.name)
        return [_resource(row) for row in self._conn.execute(query)]

    def get(self, org_id: str, name: str) -> Resource | None:
        query = select(resources).where(resources.c.org_id == org_id, resources.c.name == name)
        row = self._conn.execute(query).first()
        return _resource(row) if row else None

    def insert(self, org_id: str, resource: Resource) -> None:
        self._conn.execute(insert(resources).values(org_id=org_id, **_resource_fields(resource)))

    def update(self, org_id: str, resource: Resource) -> None:
        values = _resource_fields(resource)
        del values["name"], values["created_at"]
        query = update(resources).where(
            resources.c.org_id == org_id, resources.c.name == resource.name
        )
        self._conn.execute(query.values(**values))

    def delete(self, org_id: str, name: str) -> None:
        self._conn.execute(
            delete(resources).where(resources.c.org_id == org_id, resources.c.name == name)
        )


class SqlAuditRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, event: AuditEvent) -> None:
        self._conn.execute(insert(audit_events).values(**_fields(event)))


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def _key_fields(key: ApiKey) -> dict[str, Any]:
    values = _fields(key)
    values["status"] = values.pop("stored_status")
    values["scopes"] = list(key.scopes)
    return values


def _resource_fields(resource: Resource) -> dict[str, Any]:
    values = _fields(resource)
    del values["builtin"]
    values["actions"] = list(resource.actions)
    return values


def _org(row: Row[Any]) -> Organization:
    m = row._mapping
    return Organization(
        id=m["id"],
        name=m["name"],
        require_explicit_scopes=bool(m["require_explicit_scopes"]),
        max_key_lifetime_days=m["max_key_lifetime_days"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _user(row: Row[Any]) -> User:
    m = dict(row._mapping)
    del m["setup_digest"], m["setup_expires_at"]
    return User(**m)


def _key(row: Row[Any]) -> ApiKey:
    m = dict(row._mapping)
    m["stored_status"] = m.pop("status")
    m["scopes"] = tuple(m["scopes"])
    return ApiKey(**m)


def _app(row: Row[Any]) -> App:
    m = dict(row._mapping)
    m["scopes"] = tuple(m["scopes"])
    return App(**m)


def _profile(row: Row[Any]) -> Profile:
    return Profile(**dict(row._mapping))


def _resource(row: Row[Any]) -> Resource:
    m = dict(row._mapping)
    del m["org_id"]
    m["actions"] = tuple(m["actions"])
    return Resource(builtin=False, **m)
