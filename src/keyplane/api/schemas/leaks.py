"""Request and response bodies: leak reports (ours, and GitHub secret scanning's)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from keyplane.api.schemas.common import Request
from keyplane.domain.leaks import REPORT_KEYS_MAX, SOURCE_MAX


class LeakReportIn(Request):
    keys: list[StrictStr] = Field(
        max_length=REPORT_KEYS_MAX,
        description=(
            f"Up to {REPORT_KEYS_MAX} strings believed to be keyplane keys. Anything that is "
            "not one (by its checksum) is ignored."
        ),
    )
    source: StrictStr | None = Field(
        default=None,
        max_length=SOURCE_MAX,
        description="Where the keys were found: a URL or a note, recorded with each key.",
    )


class LeakReportAccepted(BaseModel):
    status: Literal["accepted"] = Field(
        description="Always `accepted`, whatever the keys: the answer never says which exist."
    )


class GithubMatch(BaseModel):
    """One match of GitHub's report. Fields GitHub may add later are ignored."""

    model_config = ConfigDict(extra="ignore")

    token: StrictStr
    type: StrictStr
    url: StrictStr | None = None
    source: StrictStr | None = None


class GithubFeedback(BaseModel):
    """GitHub's optional feedback: one entry per match, the token by its SHA-256 only."""

    token_hash: str = Field(description="Hex SHA-256 of the reported token.")
    token_type: str
    label: Literal["true_positive", "false_positive"] = Field(
        description=(
            "true_positive when the token is a well-formed keyplane key (its checksum holds), "
            "false_positive otherwise. Decided without looking the key up."
        )
    )
