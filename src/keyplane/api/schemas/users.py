"""Request and response bodies: users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from keyplane.api.schemas.common import Name, Omit, Request
from keyplane.domain.limits import (
    NAME_MAX,
)
from keyplane.domain.models import User

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
    name: Omit[Name] = None
    role: Omit[RoleName] = None


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: RoleName
    has_password: bool = Field(
        description="Whether this member can sign in to this organization: a password is "
        "set and the membership accepted (an invitation's link used)."
    )
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            has_password=user.can_sign_in,
            created_at=user.created_at,
        )


class UserCreated(UserOut):
    set_password_url: str | None = Field(
        description="Shown once: the path of a one-time link the user opens to choose a password."
    )
