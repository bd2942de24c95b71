"""Request and response bodies: resources."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from keyplane.api.schemas.common import Description, Request
from keyplane.domain.catalogue import Resource
from keyplane.domain.limits import (
    NAME_MAX,
)


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
