"""Recognising keyplane keys in text, for ``keyplane scan`` and other scanners.

A candidate is anything shaped like a key (``KEY_PATTERN``, the regex the README publishes
for gitleaks); only candidates whose CRC32 checksum holds are keys, so a random string of
the right shape matches about once in 62**6 (5.7e10) tries and test fixtures with a made-up
tail are not reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from keyplane.domain.tokens import (
    CHECKSUM_LENGTH,
    ENVIRONMENTS,
    PREFIX,
    RANDOM_LENGTH,
    Environment,
    mask_key,
    parse_key,
)

# ASCII word boundaries, as RE2 (gitleaks) and most scanners read ``\b``: a key glued to
# letters, digits or ``_`` on either side is part of a longer token, not a key.
KEY_REGEX: Final = (
    rf"\b{PREFIX}(?:{'|'.join(ENVIRONMENTS)})_[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}\b"
)
KEY_PATTERN: Final = re.compile(KEY_REGEX, re.ASCII)


@dataclass(frozen=True, slots=True)
class FoundKey:
    """A key found in a text: where (1-based line and column) and its masked form.

    ``key`` is the full key, kept only so that callers can tell the same key seen twice;
    it is left out of ``repr`` and must never be printed.
    """

    line: int
    column: int
    masked: str
    environment: Environment
    key: str = field(repr=False)


def find_keys(text: str) -> list[FoundKey]:
    """Every keyplane key in ``text`` whose checksum holds, in order; lines split on ``\\n``."""
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        if PREFIX not in line:  # the regex only on the rare lines that could match
            continue
        for match in KEY_PATTERN.finditer(line):
            parsed = parse_key(match.group())
            if parsed is not None:
                found.append(
                    FoundKey(
                        line=number,
                        column=match.start() + 1,
                        masked=mask_key(parsed.full),
                        environment=parsed.environment,
                        key=parsed.full,
                    )
                )
    return found


# Reports of leaked keys (POST /v1/keys/leaked, the GitHub secret-scanning endpoint).
REPORT_KEYS_MAX: Final = 1000
SOURCE_MAX: Final = 500
# What an organization does with a key reported leaked that is still usable.
LeakedKeyAction = Literal["disable", "delete"]
LEAKED_KEY_ACTIONS: Final[tuple[LeakedKeyAction, ...]] = ("disable", "delete")


def reported_keys(candidates: Iterable[str]) -> list[str]:
    """The keys among reported strings: checksum-valid ones, each once, in order.

    Everything else (typos, other vendors' tokens, random strings of the right shape) is
    dropped here, before any database work: a report of garbage costs a CRC32 a string.
    """
    seen: dict[str, None] = {}
    for candidate in candidates:
        parsed = parse_key(candidate.strip())
        if parsed is not None:
            seen.setdefault(parsed.full)
    return list(seen)


def clean_source(source: str | None) -> str | None:
    """A report's ``source`` as recorded: control characters become spaces, trimmed, cut to
    ``SOURCE_MAX``; None when empty. It is the reporter's text, shown in the audit log,
    webhooks and emails: never a key (one pasted there is masked)."""
    if source is None:
        return None
    text = "".join(" " if ord(c) < 0x20 or ord(c) == 0x7F else c for c in source).strip()
    text = KEY_PATTERN.sub(lambda m: mask_key(m.group()), text)
    return text[:SOURCE_MAX] or None
