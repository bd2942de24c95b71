"""GET /healthz: the process is up and serving."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["health"])

_OK = b'{"status":"ok"}'


@router.get(
    "/healthz",
    summary="Liveness",
    response_class=Response,
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz(request: Request) -> Response:
    return Response(_OK, media_type="application/json")
