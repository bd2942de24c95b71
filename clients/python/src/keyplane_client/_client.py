"""The clients: :class:`Keyplane` (blocking) and :class:`AsyncKeyplane` (asyncio), each an
httpx client with keyplane's authentication, retries and error mapping, and one namespace
per resource."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from typing import Self, TypeVar

import httpx
import pydantic
from pydantic import BaseModel

from keyplane_client._errors import (
    APIConnectionError,
    APITimeoutError,
    UnexpectedResponseError,
    error_from_response,
)
from keyplane_client._resources.apps import Apps, AsyncApps
from keyplane_client._resources.audit import AsyncAuditEvents, AuditEvents
from keyplane_client._resources.catalogue import AsyncResources, Resources
from keyplane_client._resources.keys import AsyncKeys, Keys
from keyplane_client._resources.org import AsyncOrg, Org
from keyplane_client._resources.profiles import AsyncProfiles, Profiles
from keyplane_client._resources.usage import AsyncUsage, Usage
from keyplane_client._resources.users import AsyncUsers, Users
from keyplane_client._resources.webhooks import AsyncWebhooks, Webhooks
from keyplane_client._retry import RetryPolicy
from keyplane_client._types import Call
from keyplane_client._version import __version__

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2


def _headers(api_key: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    if not api_key:
        raise ValueError("api_key is required: a keyplane key (kp_live_… or kp_test_…)")
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        "User-Agent": f"keyplane-client-python/{__version__}",
    }
    headers.update(extra or {})
    return headers


def _connection_error(error: httpx.TransportError) -> APIConnectionError:
    cls = APITimeoutError if isinstance(error, httpx.TimeoutException) else APIConnectionError
    # The message is httpx's (an address and a reason): no header, so never the key.
    return cls(f"{type(error).__name__}: {error}", request=_request_of(error))


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as error:
        where = f"{response.request.method} {response.request.url.path}"
        raise UnexpectedResponseError(
            f"{where} answered {response.status_code} with a body that is not a "
            f"{model.__name__}: {error.error_count()} problem(s), the first: "
            f"{error.errors()[0]['msg']} at {error.errors()[0]['loc']}",
            response=response,
        ) from None


def _wait_after_error(
    policy: RetryPolicy, attempt: int, error: httpx.TransportError, call: Call
) -> float:
    """Seconds before the next attempt after a transport error; or the error, raised."""
    delay = policy.after_error(attempt, error, resendable=call.safe_to_resend)
    if delay is None:
        raise _connection_error(error) from error
    return delay


def _wait_after_answer(policy: RetryPolicy, attempt: int, response: httpx.Response) -> float:
    """Seconds before the next attempt after an error answer (read); or the error, raised."""
    delay = policy.after_status(attempt, response)
    if delay is None:
        raise error_from_response(response)
    return delay


def _request_of(error: httpx.TransportError) -> httpx.Request | None:
    try:
        return error.request
    except RuntimeError:
        return None


class Keyplane:
    """A blocking client for keyplane's API.

    ``Keyplane(base_url, api_key)``: ``base_url`` is where keyplane serves
    (``https://keyplane.example.com``), ``api_key`` the key the client acts as. Requests
    answered 429 or 503, or lost to a connection error where that is safe, are sent again
    up to ``max_retries`` times (see ``keyplane_client._retry``). ``transport`` replaces
    the network, for tests: :class:`keyplane_client.testing.MockKeyplane`, or any httpx
    transport. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retry = RetryPolicy(max_retries=max_retries)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        self.keys = Keys(self)
        self.apps = Apps(self)
        self.resources = Resources(self)
        self.profiles = Profiles(self)
        self.users = Users(self)
        self.webhooks = Webhooks(self)
        self.audit_events = AuditEvents(self)
        self.usage = Usage(self)
        self.org = Org(self)

    def __repr__(self) -> str:
        return f"Keyplane(base_url={self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- what the namespaces call (private: Call may change) ---------------------------

    def _request(self, model: type[M], call: Call) -> M:
        return _parse(model, self._send(call, stream=False))

    def _request_empty(self, call: Call) -> None:
        self._send(call, stream=False)

    def _stream(self, call: Call) -> Iterator[bytes]:
        """The answer's body, chunk by chunk, as it arrives."""
        response = self._send(call, stream=True)
        try:
            yield from response.iter_bytes()
        except httpx.TransportError as error:
            raise _connection_error(error) from error
        finally:
            response.close()

    def _send(self, call: Call, *, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method, call.path, params=call.query(), json=call.json
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                delay = _wait_after_error(self._retry, attempt, error, call)
            else:
                if response.is_success:
                    return response
                response.read()
                response.close()
                delay = _wait_after_answer(self._retry, attempt, response)
            time.sleep(delay)
            attempt += 1


class AsyncKeyplane:
    """The asyncio client: the same namespaces as :class:`Keyplane`, each method awaited
    (``await kp.keys.get(key_id)``), lists iterated with ``async for``. Use as an async
    context manager, or ``await kp.close()``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retry = RetryPolicy(max_retries=max_retries)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        self.keys = AsyncKeys(self)
        self.apps = AsyncApps(self)
        self.resources = AsyncResources(self)
        self.profiles = AsyncProfiles(self)
        self.users = AsyncUsers(self)
        self.webhooks = AsyncWebhooks(self)
        self.audit_events = AsyncAuditEvents(self)
        self.usage = AsyncUsage(self)
        self.org = AsyncOrg(self)

    def __repr__(self) -> str:
        return f"AsyncKeyplane(base_url={self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, model: type[M], call: Call) -> M:
        return _parse(model, await self._send(call, stream=False))

    async def _request_empty(self, call: Call) -> None:
        await self._send(call, stream=False)

    async def _stream(self, call: Call) -> AsyncIterator[bytes]:
        response = await self._send(call, stream=True)
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.TransportError as error:
            raise _connection_error(error) from error
        finally:
            await response.aclose()

    async def _send(self, call: Call, *, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method, call.path, params=call.query(), json=call.json
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                delay = _wait_after_error(self._retry, attempt, error, call)
            else:
                if response.is_success:
                    return response
                await response.aread()
                await response.aclose()
                delay = _wait_after_answer(self._retry, attempt, response)
            await asyncio.sleep(delay)
            attempt += 1


__all__ = ["AsyncKeyplane", "Keyplane"]
