"""Request and response bodies of the REST API (and its OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from keyplane.domain.catalogue import Resource
from keyplane.domain.errors import InvalidInput
from keyplane.domain.limits import (
    DESCRIPTION_MAX,
    EXPIRES_IN_DAYS_MAX,
    EXPIRES_IN_DAYS_MIN,
    NAME_MAX,
)
from keyplane.domain.models import App, Organization, Profile, User
from keyplane.services.keys import IssuedKey, KeyView

Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX)]
Scope = Annotated[str, Field(min_length=1, max_length=100, examples=["models:read"])]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        """No NUL character anywhere in a body: PostgreSQL cannot store one."""
        where = _nul_at(data, "")
        if where is not None:
            raise PydanticCustomError(
                "nul_character", "{field} contains a NUL character", {"field": where or "body"}
            )
        return data


def _nul_at(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return path or "body"
            found = _nul_at(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str


class FieldProblem(BaseModel):
    field: str
    message: str


class ValidationProblem(Problem):
    errors: list[FieldProblem]


T = TypeVar("T")


class Paged(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last."
    )


# ---- keys -------------------------------------------------------------------------------


class KeyCreate(Request):
    name: Name
    description: Description = ""
    scopes: list[Scope] = Field(
        default_factory=list,
        description="Own scopes. None gives full access (or, in an app, the app's scopes), "
        "unless the organization requires explicit scopes.",
    )
    app_id: str | None = None
    expires_at: AwareDatetime | None = Field(default=None, description="RFC 3339, in the future.")
    expires_in_days: int | None = Field(
        default=None, ge=EXPIRES_IN_DAYS_MIN, le=EXPIRES_IN_DAYS_MAX
    )
    profile_id: str | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Any JSON object up to 4 KB."
    )
    environment: Literal["live", "test"] = "live"


IMMUTABLE_KEY_FIELDS = ("name", "scopes", "app_id", "key", "client_secret", "secret", "environment")


class KeyUpdate(Request):
    status: Literal["active", "inactive"] | None = None
    profile_id: str | None = None
    description: Description | None = None
    metadata: dict[str, Any] | None = None
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="May only move earlier, or later within the organization's maximum lifetime.",
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_immutable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            present = [f for f in IMMUTABLE_KEY_FIELDS if f in data]
            if present:
                raise PydanticCustomError(
                    "immutable", "{fields} cannot change after creation", {"fields": present}
                )
        return data


class KeyOut(BaseModel):
    id: str
    name: str
    description: str
    client_id: str = Field(description="The key id; with the full key as secret, an OAuth2 client.")
    masked_key: str
    scopes: list[str] = Field(description="The key's own scopes, as created.")
    effective_scopes: list[str] = Field(
        description="What the key may do now (app scopes included)."
    )
    full_access: bool
    status: Literal["active", "inactive", "expired"]
    app_id: str | None
    profile_id: str | None
    metadata: dict[str, Any]
    environment: Literal["live", "test"]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, view: KeyView) -> KeyOut:
        key = view.key
        return cls(
            id=key.id,
            name=key.name,
            description=key.description,
            client_id=key.id,
            masked_key=key.masked_key,
            scopes=list(key.scopes),
            effective_scopes=view.effective.sorted(),
            full_access=view.effective.is_full_access,
            status=view.status,
            app_id=key.app_id,
            profile_id=key.profile_id,
            metadata=key.metadata,
            environment=key.environment,
            created_at=key.created_at,
            created_by=key.created_by,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
        )


class KeyCreated(KeyOut):
    key: str = Field(description="The full key. Shown in this response only, never again.")
    client_secret: str = Field(description="The same full key, named as an OAuth2 client secret.")
    warning: str

    @classmethod
    def of_issued(cls, issued: IssuedKey) -> KeyCreated:
        base = KeyOut.of(issued.view).model_dump()
        warning = "Store this key now: it cannot be shown again."
        if issued.view.effective.is_full_access:
            warning += " It has FULL ACCESS: no scopes were given, so it may do everything."
        return cls(**base, key=issued.secret, client_secret=issued.secret, warning=warning)


# ---- apps -------------------------------------------------------------------------------


class AppCreate(Request):
    name: Name
    description: Description = ""
    scopes: list[Scope] = Field(default_factory=list, description="Empty means full access.")


class AppUpdate(Request):
    name: Name | None = None
    description: Description | None = None
    scopes: list[Scope] | None = Field(
        default=None, description="Applies to every key of the app at once."
    )


class AppOut(BaseModel):
    id: str
    name: str
    description: str
    scopes: list[str]
    full_access: bool
    key_count: int
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, app: App) -> AppOut:
        return cls(
            id=app.id,
            name=app.name,
            description=app.description,
            scopes=list(app.scopes),
            full_access=app.scope_set.is_full_access,
            key_count=app.key_count,
            created_by=app.created_by,
            created_at=app.created_at,
            updated_at=app.updated_at,
        )


# ---- profiles ---------------------------------------------------------------------------


class ProfileCreate(Request):
    name: Name
    description: Description = ""
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Any JSON object up to 16 KB."
    )


class ProfileUpdate(Request):
    name: Name | None = None
    description: Description | None = None
    settings: dict[str, Any] | None = None


class ProfileOut(BaseModel):
    id: str
    name: str
    description: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, profile: Profile) -> ProfileOut:
        return cls(
            id=profile.id,
            name=profile.name,
            description=profile.description,
            settings=profile.settings,
            created_at=profile.created_at,
            updated_at=profile.updated_at,
        )


# ---- resources --------------------------------------------------------------------------


class ResourceCreate(Request):
    name: Annotated[str, Field(min_length=1, max_length=40, examples=["models"])]
    title: Annotated[str, Field(min_length=1, max_length=NAME_MAX)] | None = None
    description: Description = ""
    actions: list[Annotated[str, Field(max_length=40)]] | None = Field(
        default=None, description="Defaults to read, write and delete."
    )


class ResourceUpdate(Request):
    title: Annotated[str, Field(min_length=1, max_length=NAME_MAX)] | None = None
    description: Description | None = None
    actions: list[Annotated[str, Field(max_length=40)]] | None = None


class ResourceOut(BaseModel):
    name: str
    title: str
    description: str
    actions: list[str]
    builtin: bool
    scopes: list[str] = Field(description="Every scope this resource offers, wildcard first.")

    @classmethod
    def of(cls, resource: Resource) -> ResourceOut:
        return cls(
            name=resource.name,
            title=resource.title,
            description=resource.description,
            actions=list(resource.actions),
            builtin=resource.builtin,
            scopes=[f"{resource.name}:*"] + [f"{resource.name}:{a}" for a in resource.actions],
        )


# ---- organization -----------------------------------------------------------------------


class OrgUpdate(Request):
    name: Name | None = None
    require_explicit_scopes: bool | None = None
    max_key_lifetime_days: int | None = Field(default=None, ge=1, le=EXPIRES_IN_DAYS_MAX)


class OrgOut(BaseModel):
    id: str
    name: str
    require_explicit_scopes: bool
    max_key_lifetime_days: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, org: Organization) -> OrgOut:
        return cls(
            id=org.id,
            name=org.name,
            require_explicit_scopes=org.require_explicit_scopes,
            max_key_lifetime_days=org.max_key_lifetime_days,
            created_at=org.created_at,
            updated_at=org.updated_at,
        )


# ---- users ------------------------------------------------------------------------------

RoleName = Literal["owner", "admin", "developer", "viewer"]


class UserCreate(Request):
    email: Annotated[str, Field(min_length=3, max_length=254, examples=["ada@example.com"])]
    name: Annotated[str, Field(max_length=NAME_MAX)] = ""
    role: RoleName = "viewer"
    password: Annotated[str, Field(min_length=12, max_length=1024)] | None = Field(
        default=None,
        description="An initial password; without one the answer carries a one-time "
        "set-password link (valid 72 hours).",
    )


class UserUpdate(Request):
    name: Name | None = None
    role: RoleName | None = None


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: RoleName
    has_password: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            has_password=user.password_hash is not None,
            created_at=user.created_at,
        )


class UserCreated(UserOut):
    set_password_url: str | None = Field(
        description="Shown once: the path of a one-time link the user opens to choose a password."
    )


# ---- verification (documentation only: the route parses by hand, see routes/verify.py) --


class VerifyRequest(Request):
    key: str = Field(description="The key a client presented to your service.")
    scopes: list[Scope] = Field(default_factory=list, description="May the key do all of these?")
    ip: str | None = Field(
        default=None, description="The client's address (recorded, not yet enforced)."
    )


class VerifiedProfile(BaseModel):
    id: str
    name: str
    settings: dict[str, Any]


class VerifyResponse(BaseModel):
    valid: bool
    code: Literal["VALID", "NOT_FOUND", "EXPIRED", "DISABLED", "INSUFFICIENT_SCOPE"]
    key_id: str | None = None
    app_id: str | None = None
    scopes: list[str] = Field(default_factory=list, description="The key's effective scopes.")
    missing_scopes: list[str] = Field(default_factory=list)
    profile: VerifiedProfile | None = None
    metadata: dict[str, Any] | None = None
    environment: Literal["live", "test"] | None = None
    expires_at: datetime | None = None


C = TypeVar("C")


def changes_from(body: BaseModel, changes: type[C], *, nullable: tuple[str, ...] = ()) -> C:
    """A partial update with exactly the fields the client sent (null only where allowed)."""
    values: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None and name not in nullable:
            raise InvalidInput.field(name, "must not be null")
        values[name] = tuple(value) if isinstance(value, list) else value
    return changes(**values)
