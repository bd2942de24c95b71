"""What can go wrong, in the domain's words. ``api/errors.py`` maps these to HTTP.

KeyplaneError
├── NotFound              an object that does not exist in the caller's organization
├── Conflict              a name already taken, an object still in use, the last owner
│   └── LimitsNeedRedis   a limit or quota while several processes keep limits in memory
├── InvalidInput          a field with a reason (``errors``: one or more FieldError)
├── Unauthenticated       no key, or a key that is malformed, unknown, disabled or expired
├── Throttled             too many failed sign-ins
│   └── ReportsThrottled  too many leak reports from one address
├── LimitExceeded       the calling key is over a rate limit or out of quota (429)
├── SignatureRefused      a partner's report (GitHub secret scanning) whose signature does
│                         not verify against the partner's published keys
├── PartnerKeysUnavailable  the partner's public keys cannot be fetched: nothing can be
│                         verified, so nothing is processed (fail closed)
└── Forbidden
    ├── MissingScope      the caller lacks the scope an operation needs
    ├── Escalation        the caller tried to grant a scope it does not hold
    └── IpForbidden       the calling key's IP allowlist does not hold the client

StorageUnavailable        the store could not complete a unit of work (nothing of it was
                          written): a database that is down, full or refusing a write. Not
                          a KeyplaneError: nothing the caller did caused it, and no handler
                          of the caller's mistakes may swallow it (the API answers 503).
└── LimitsUnavailable     the rate-limit store (Redis) is unreachable and the failure policy
                          says closed (redislimits.py): keyplane cannot tell whether the key
                          may be used, so it answers 503 rather than guess.
MailUnavailable           the mail server did not accept a message (a job retries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the numbers only; ratelimits imports this module
    from keyplane.domain.ratelimits import Admission


class KeyplaneError(Exception):
    """Base of every error the domain and services raise on purpose."""


class NotFound(KeyplaneError):
    def __init__(self, kind: str, ident: str) -> None:
        # An id is echoed only when it could be one: never a pasted key or a long blob.
        shown = repr(ident) if len(ident) <= 64 and "kp_" not in ident else "given"
        super().__init__(f"No {kind} with the id {shown} exists in this organization.")
        self.kind = kind
        self.ident = ident


class Conflict(KeyplaneError):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class LimitsNeedRedis(Conflict):
    """A rate limit or quota cannot be exact here: without KEYPLANE_REDIS_URL each process
    counts it in its own memory, and ``processes`` of them serve this database."""

    def __init__(self, field: str, processes: int) -> None:
        super().__init__(
            f"Rate limits and quotas need KEYPLANE_REDIS_URL when several keyplane processes "
            f"serve one database: {processes} serve this one, and each would count this "
            f"limit on its own (a key limited to 100 a minute would get up to "
            f"{100 * processes}). Set KEYPLANE_REDIS_URL on every node, or serve from one "
            "process.",
            field=field,
        )
        self.processes = processes


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class InvalidInput(KeyplaneError):
    def __init__(self, *errors: FieldError) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        return cls(FieldError(field, message))


class Unauthenticated(KeyplaneError):
    """Deliberately vague: the message never says whether a key exists."""


class InvalidCredentials(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class Throttled(KeyplaneError):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"Too many failed attempts. Try again in {self.retry_after} seconds.")


class ReportsThrottled(Throttled):
    """Too many leak reports from one address (POST /v1/keys/leaked)."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        KeyplaneError.__init__(
            self,
            f"Too many leak reports from this address. Try again in {self.retry_after} seconds.",
        )


class Forbidden(KeyplaneError):
    pass


class IpForbidden(Forbidden):
    """The calling key has an IP allowlist that does not hold the client's address."""

    def __init__(self) -> None:
        super().__init__("This API key may not be used from this address (its IP allowlist).")


class LimitExceeded(KeyplaneError):
    """The calling key is over one of its rate limits, or out of quota (``code`` says
    which); ``admission`` has the numbers for the response's headers."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.code = admission.code
        self.retry_after = max(1, math.ceil(admission.retry_after)) if admission.retry_after else 0
        if admission.code == "RATE_LIMITED":
            message = f"This API key is over a rate limit. Retry in {self.retry_after} seconds."
        elif self.retry_after:
            message = f"This API key's quota is used up until its refill in {self.retry_after} s."
        else:
            message = "This API key's quota is used up."
        super().__init__(message)


class SignatureRefused(KeyplaneError):
    """A partner's report whose signature headers are missing, name an unknown key or do
    not verify over the raw body. The message says which, never anything about keys."""


class PartnerKeysUnavailable(KeyplaneError):
    """The partner's public keys could not be fetched (or parsed): the report cannot be
    verified, so it is refused, and the partner retries it later."""

    retry_after = 60


class MissingScope(Forbidden):
    def __init__(self, scope: str) -> None:
        super().__init__(f"This API key lacks the scope {scope!r} that this operation requires.")
        self.scope = scope


class Escalation(Forbidden):
    def __init__(self, field: str, scopes: list[str]) -> None:
        listed = ", ".join(repr(s) for s in scopes)
        super().__init__(f"You cannot grant scopes you do not hold: {listed}.")
        self.field = field
        self.scopes = scopes


class StorageUnavailable(Exception):
    """The store failed; the unit of work was rolled back. Retry after ``retry_after`` s."""

    def __init__(self, retry_after: int = 5) -> None:
        super().__init__(
            "The database could not complete this request; nothing was changed. "
            f"Try again in {retry_after} seconds."
        )
        self.retry_after = retry_after


class LimitsUnavailable(StorageUnavailable):
    """Redis could not be reached to check a key's rate limits or quota, and
    KEYPLANE_REDIS_FAILURE (or its default for quotas) says closed. A StorageUnavailable,
    so every path that answers 503 for a failed store answers it too."""

    def __init__(self, retry_after: int = 1) -> None:
        Exception.__init__(
            self,
            "The rate limits and quota of this key cannot be checked right now, so it is not "
            f"accepted. Try again in {retry_after} seconds.",
        )
        self.retry_after = retry_after


class MailUnavailable(Exception):
    """The mail server did not accept a message; the job that sent it tries again later."""
