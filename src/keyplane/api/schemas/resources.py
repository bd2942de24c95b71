"""Request and response bodies: resources."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from keyplane.api.schemas.common import Description, Omit, Request
from keyplane.domain.catalogue import Resource
from keyplane.domain.limits import (
    NAME_MAX,
)
from keyplane.domain.scopes import ACTION_PATTERN, NAME_PATTERN

# Documented as patterns, checked by the service (whose messages name the rule).
ResourceName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        examples=["models"],
        json_schema_extra={"pattern": f"^{NAME_PATTERN}$"},
    ),
]
Action = Annotated[str, Field(max_length=40, json_schema_extra={"pattern": f"^{ACTION_PATTERN}$"})]


class ResourceCreate(Request):
    name: ResourceName
    title: Annotated[str, Field(min_length=1, max_length=NAME_MAX)] | None = None
    description: Description = ""
    actions: list[Action] | None = Field(
        default=None, description="Defaults to read, write and delete."
    )


class ResourceUpdate(Request):
    title: Omit[Annotated[str, Field(min_length=1, max_length=NAME_MAX)]] = None
    description: Omit[Description] = None
    actions: Omit[list[Action]] = None


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
