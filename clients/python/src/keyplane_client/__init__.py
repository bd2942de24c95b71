"""keyplane's Python client.

```python
from keyplane_client import Keyplane

with Keyplane("https://keyplane.example.com", api_key) as kp:
    created = kp.keys.create(name="acme prod", scopes=["models:read"])
    verdict = kp.keys.verify(created.key, scopes=["models:read"])
```

Everything public is here; modules starting with ``_`` may change without notice.
``keyplane_client.testing`` holds a mock keyplane for your own tests.

The guard for FastAPI and Starlette (``KeyplaneGuard``, ``KeyplaneMiddleware``,
``KeyplaneRefused``) is imported on first use: it needs Starlette (FastAPI brings it),
which the client alone does not.
"""

from typing import TYPE_CHECKING, Any

from keyplane_client._client import AsyncKeyplane, Keyplane
from keyplane_client._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FieldError,
    InternalServerError,
    KeyplaneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    UnexpectedResponseError,
    ValidationError,
)
from keyplane_client._models import (
    App,
    AuditActor,
    AuditChange,
    AuditEvent,
    AuditTarget,
    CreatedKey,
    CreatedUser,
    CreatedWebhook,
    Delivery,
    DeliveryAttempt,
    Key,
    KeyUsage,
    Organization,
    Preset,
    Profile,
    Quota,
    QuotaParam,
    QuotaState,
    RateLimit,
    RateLimitParam,
    RateLimitState,
    Refill,
    RefillParam,
    Resource,
    RouteParam,
    TopKeys,
    UsagePoint,
    UsageSeries,
    User,
    Verdict,
    VerifiedProfile,
    Webhook,
)
from keyplane_client._pagination import AsyncPaginator, Page, Paginator
from keyplane_client._types import NOT_GIVEN, NotGiven
from keyplane_client._verified import VerifiedKey
from keyplane_client._version import __version__

if TYPE_CHECKING:
    from keyplane_client._guard import KeyplaneGuard, KeyplaneRefused
    from keyplane_client._middleware import KeyplaneMiddleware

_GUARD = {
    "KeyplaneGuard": "keyplane_client._guard",
    "KeyplaneRefused": "keyplane_client._guard",
    "KeyplaneMiddleware": "keyplane_client._middleware",
}


def __getattr__(name: str) -> Any:
    module = _GUARD.get(name)
    if module is None:
        raise AttributeError(f"module 'keyplane_client' has no attribute {name!r}")
    import importlib  # here: the guard's modules import Starlette, only when asked for

    return getattr(importlib.import_module(module), name)


__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "App",
    "AsyncKeyplane",
    "AsyncPaginator",
    "AuditActor",
    "AuditChange",
    "AuditEvent",
    "AuditTarget",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "CreatedKey",
    "CreatedUser",
    "CreatedWebhook",
    "Delivery",
    "DeliveryAttempt",
    "FieldError",
    "InternalServerError",
    "Key",
    "KeyUsage",
    "Keyplane",
    "KeyplaneError",
    "KeyplaneGuard",
    "KeyplaneMiddleware",
    "KeyplaneRefused",
    "NotFoundError",
    "NotGiven",
    "Organization",
    "Page",
    "Paginator",
    "PermissionDeniedError",
    "Preset",
    "Profile",
    "Quota",
    "QuotaParam",
    "QuotaState",
    "RateLimit",
    "RateLimitParam",
    "RateLimitState",
    "RateLimitedError",
    "Refill",
    "RefillParam",
    "Resource",
    "RouteParam",
    "ServiceUnavailableError",
    "TopKeys",
    "UnexpectedResponseError",
    "UsagePoint",
    "UsageSeries",
    "User",
    "ValidationError",
    "Verdict",
    "VerifiedKey",
    "VerifiedProfile",
    "Webhook",
    "__version__",
]
