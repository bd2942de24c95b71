"""Reports of leaked keys: anyone's (``POST /v1/keys/leaked``) and GitHub secret scanning's.

Both are public (a finder of a leaked key holds no keyplane credentials), so both answer
the same whatever the keys: the answer is decided from the request alone (its shape, and
for GitHub its signature) before any key is looked up, and the lookups and revocations run
afterwards on the leak service's own worker (services/leaks.py). Neither the body nor the
time of an answer can tell a reporter whether a key exists.

In order, cheapest refusal first: the per-address rate limit (``/v1/keys/leaked`` only:
GitHub's reports are signed, and a signature check costs less than a refused alert), the
body read up to its cap, the signature (GitHub), the shape of the body, the checksum filter.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException

from keyplane.api.deps import Services
from keyplane.api.errors import validation_errors
from keyplane.api.routes._docs import problems
from keyplane.api.schemas.leaks import (
    GithubFeedback,
    GithubMatch,
    LeakReportAccepted,
    LeakReportIn,
)
from keyplane.container import Keyplane
from keyplane.domain.errors import FieldError, InvalidInput, ReportsThrottled
from keyplane.domain.leaks import REPORT_KEYS_MAX, clean_source, reported_keys
from keyplane.domain.limits import REQUEST_BODY_MAX_BYTES
from keyplane.domain.ratelimits import RateLimit
from keyplane.domain.tokens import parse_key
from keyplane.services.leaks import LeakReport, ReportedKey, Reporter

router = APIRouter(tags=["leaks"])

BODY_MAX: Final = REQUEST_BODY_MAX_BYTES
_ACCEPTED: Final = orjson.dumps({"status": "accepted"})
_MATCHES: Final = TypeAdapter(list[GithubMatch])


def _responses(*statuses: int, drop: tuple[int, ...]) -> dict[int | str, dict[str, Any]]:
    documented = problems(*statuses)
    for status in drop:
        documented.pop(status, None)
    return documented


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.post(
    "/v1/keys/leaked",
    status_code=202,
    response_model=LeakReportAccepted,
    # No credentials, so no 401 or 403; 503 when Redis holds the limit and is down (closed).
    responses=_responses(400, 413, 422, 429, 503, drop=(401, 403)),
    openapi_extra=_body(LeakReportIn.model_json_schema()),
    summary="Report leaked keys",
)
async def report_leaked_keys(request: Request, kp: Services) -> Response:
    """Public, like GitHub's credential revocation API: send keys you found in public and
    every one still usable is disabled (or deleted, as its organization chose), and its
    organization is told (webhook `key.leaked`, email to owners and admins). Up to
    1,000 keys a request, a limited number of requests a minute per address. The answer
    is 202 whatever the keys are: it never says whether one exists."""
    await _throttle(kp, request)
    _require_json(request)
    data = _json(await read_capped(request))
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        _within_cap(data["keys"], "keys")
    try:
        report = LeakReportIn.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(*validation_errors(list(map(dict, exc.errors())))) from None
    source = clean_source(report.source)
    keys = tuple(ReportedKey(key, source) for key in reported_keys(report.keys))
    _submit(kp, request, keys, "api")
    return Response(_ACCEPTED, status_code=202, media_type="application/json")


@router.post(
    "/v1/github/secret-scanning",
    status_code=202,
    response_model=list[GithubFeedback],
    # 401: the signature is missing, names an unknown key or does not hold. 503: GitHub's
    # keys cannot be fetched (GitHub sends the report again later).
    responses=_responses(400, 401, 413, 422, 503, drop=(403, 429)),
    openapi_extra=_body(
        {"type": "array", "maxItems": REPORT_KEYS_MAX, "items": GithubMatch.model_json_schema()}
    ),
    summary="GitHub secret scanning: report leaked keys",
)
async def github_secret_scanning(
    request: Request,
    kp: Services,
    key_identifier: Annotated[str | None, Header(alias="Github-Public-Key-Identifier")] = None,
    key_signature: Annotated[str | None, Header(alias="Github-Public-Key-Signature")] = None,
) -> Response:
    """The secret-scanning partner endpoint GitHub posts keyplane keys it finds in public
    to. The ECDSA signature over the raw body must verify against GitHub's published keys
    (`KEYPLANE_GITHUB_KEYS_URL`), or nothing is processed. Then as `POST /v1/keys/leaked`;
    the answer is GitHub's feedback format, one entry per match, labelled by the key's
    checksum alone."""
    _require_json(request)
    raw = await read_capped(request)
    await run_in_threadpool(kp.github.verify, key_identifier, key_signature, raw)
    data = _json(raw)
    if isinstance(data, list):
        _within_cap(data, "")
    try:
        matches = _MATCHES.validate_python(data)
    except ValidationError as exc:
        raise InvalidInput(*validation_errors(list(map(dict, exc.errors())))) from None
    keys: list[ReportedKey] = []
    for match in matches:
        where = " ".join(part for part in (match.url, match.source and f"({match.source})") if part)
        keys.extend(ReportedKey(key, clean_source(where)) for key in reported_keys([match.token]))
    _submit(kp, request, tuple(keys), "github")
    feedback = [
        {
            "token_hash": hashlib.sha256(match.token.encode()).hexdigest(),
            "token_type": match.type,
            "label": "true_positive" if parse_key(match.token) else "false_positive",
        }
        for match in matches
    ]
    return Response(orjson.dumps(feedback), status_code=202, media_type="application/json")


async def read_capped(request: Request, limit: int = BODY_MAX) -> bytes:
    """The body, read no further than ``limit`` bytes (413 past it, however it is sent).
    RequestGuard caps every body already; this keeps the promise here, where it is made."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"Request bodies are limited to {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"Request bodies are limited to {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _require_json(request: Request) -> None:
    if "json" not in request.headers.get("content-type", "").lower():
        raise HTTPException(
            415, "Send the request body as JSON with 'Content-Type: application/json'."
        )


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise HTTPException(400, "The request body is not valid JSON.") from None


def _within_cap(items: list[Any], field: str) -> None:
    if len(items) > REPORT_KEYS_MAX:
        raise InvalidInput(
            FieldError(
                f"{field}[{REPORT_KEYS_MAX}]",
                f"is beyond the limit of {REPORT_KEYS_MAX} keys a request; send the rest in "
                "another request",
            )
        )


def _client_bucket(request: Request) -> str:
    """The address a report is counted against (as TrustedProxies resolved it): an IPv6
    client by its /64, which one subscriber usually holds whole."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


async def _throttle(kp: Keyplane, request: Request) -> None:
    """The per-address limit, counted where rate limits are (Redis when configured, so it
    holds across nodes). Redis down: KEYPLANE_REDIS_FAILURE decides, as for keys."""
    limits = (RateLimit("leak_reports", kp.settings.leak_reports_per_minute, 60),)
    slot = "leak-report:" + _client_bucket(request)
    now = kp.clock()
    if kp.limiter.blocking:
        admission = await kp.limiter.admit_async(slot, limits, None, 1, now)
    else:
        admission = kp.limiter.admit(slot, limits, None, 1, now)
    if not admission.admitted:
        kp.metrics.leak_report("rate_limited")
        raise ReportsThrottled(admission.retry_after)


def _submit(
    kp: Keyplane, request: Request, keys: tuple[ReportedKey, ...], reporter: Reporter
) -> None:
    agent = request.headers.get("user-agent")
    kp.metrics.leak_report("accepted")
    kp.leaks.submit(
        LeakReport(
            keys=keys,
            reporter=reporter,
            reported_at=kp.clock(),
            client_ip=request.client.host[:64] if request.client else None,
            user_agent=agent[:512] if agent else None,
        )
    )
