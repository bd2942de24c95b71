"""Finding full access in SQL: rows whose stored scope list grants everything."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, String, cast

from keyplane.domain.scopes import FULL_ACCESS

# Services store a normalised, sorted scope list: empty (full access by default) or, when
# ``*`` was chosen, ``*`` alone (it absorbs every other scope). So full access is one of two
# exact JSON texts, the same on SQLite (JSON kept as text) and PostgreSQL (jsonb's canonical
# text), which spares a JSON function per dialect.
_EVERYTHING = (json.dumps([]), json.dumps([FULL_ACCESS]))


def grants_everything(columns: Any) -> ColumnElement[bool]:
    """``columns.scopes`` holds no scope or ``*`` alone."""
    return cast(columns.scopes, String).in_(_EVERYTHING)
