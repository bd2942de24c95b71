"""Turning domain dataclasses into row values."""

from __future__ import annotations

from typing import Any


def fields(obj: Any) -> dict[str, Any]:
    """Every dataclass field by name, as the tables name their columns."""
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}
