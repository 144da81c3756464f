"""Client errors with the same shape FastAPI gives its own validation errors, for checks that need
the database (the practice's lines, a referrer's practice) and so run after model validation."""

from __future__ import annotations

import json

from fastapi import HTTPException, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError


def field_error(field: str, msg: str, *, where: str = "body") -> RequestValidationError:
    """A 422 naming `field`. `msg` must not echo the client's value (it may be PHI)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, field), "msg": msg, "input": None}]
    )


def not_found(what: str) -> HTTPException:
    # Another practice's ids answer exactly like ids that do not exist.
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")


def conflict(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail=detail)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 shape (`detail`: items with `loc`, `msg`, `type`) minus `input`: the
    rejected value may be PHI, and may not even be encodable (a lone surrogate in a JSON string
    would make the default handler fail with a 500). ASCII-escaped for the same reason."""
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        item = {key: error[key] for key in ("type", "loc", "msg") if key in error}
        # A raised ValueError lands in ctx as an object; its text is already in `msg`.
        ctx = {k: v for k, v in error.get("ctx", {}).items() if not isinstance(v, Exception)}
        if ctx:
            item["ctx"] = ctx
        detail.append(item)
    body = json.dumps({"detail": jsonable_encoder(detail)}, ensure_ascii=True, default=str)
    return Response(body, status_code=422, media_type="application/json")
