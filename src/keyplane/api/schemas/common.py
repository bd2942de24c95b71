"""What every request and response body shares: strict requests, problem documents,
pages and partial updates."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from keyplane.domain.errors import InvalidInput
from keyplane.domain.limits import (
    DESCRIPTION_MAX,
    NAME_MAX,
)
from keyplane.domain.scopes import ACTION_PATTERN, NAME_PATTERN

T = TypeVar("T")

Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX)]
# The grammar is documented as a pattern and checked by the domain, whose messages say more
# than "does not match".
SCOPE_PATTERN = rf"^(\*|{NAME_PATTERN}:({ACTION_PATTERN}|\*))$"
Scope = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        examples=["models:read"],
        json_schema_extra={"pattern": SCOPE_PATTERN},
    ),
]


def _not_null(schema: dict[str, Any]) -> None:
    options = [o for o in schema.pop("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    schema.pop("default", None)


# A field a partial update may leave out but not set to null ("must not be null"): the
# document offers no null. (Validation still takes None, so an explicit null reaches the
# one check that names the field, instead of a union's per-member errors.)
Omit = Annotated[T | None, Field(json_schema_extra=_not_null)]


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


class Paged(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last."
    )


C = TypeVar("C")


def changes_from(body: BaseModel, changes: type[C], *, nullable: tuple[str, ...] = ()) -> C:
    """A partial update with exactly the fields the client sent (null only where allowed)."""
    values: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None and name not in nullable:
            raise InvalidInput.field(name, "must not be null")
        values[name] = _plain(value)
    return changes(**values)


def _plain(value: Any) -> Any:
    """Nested bodies as the services take them: plain JSON, with only the fields sent."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value
