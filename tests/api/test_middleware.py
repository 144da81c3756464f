"""The middleware on its own: a bug is a 500 whose log line carries no PHI; the size limit
counts streamed bytes whatever the app does with the aborted read."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from api.middleware import BodySizeLimit, ErrorShield

PHI = {"email": "ada@example.com", "phone": "+12125550123"}


async def buggy(scope: Scope, receive: Receive, send: Send) -> None:
    # Like a database error: runtime values (PHI) in the message. (The traceback shows source
    # lines, so the PHI must not be a literal on the raising line for the test to mean anything.)
    raise RuntimeError(f"INSERT failed for {PHI['email']} {PHI['phone']}")


async def swallowing(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that catches the aborted read and answers 200 anyway."""
    try:
        while (await receive()).get("more_body"):
            pass
    except Exception:
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_bug_is_a_500_logged_without_its_message(caplog: pytest.LogCaptureFixture) -> None:
    app = ErrorShield(buggy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        with caplog.at_level(logging.ERROR):
            r = await c.get("/v1/anything")
    assert (r.status_code, r.json()) == (500, {"detail": "internal error"})
    assert "RuntimeError" in caplog.text and "/v1/anything" in caplog.text
    assert PHI["email"] not in caplog.text and PHI["phone"] not in caplog.text


async def test_streamed_bytes_over_the_limit_are_413_even_if_the_app_swallows_it() -> None:
    app = BodySizeLimit(swallowing, max_bytes=1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"z" * 600

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        small = await c.post("/", content=b"z" * 1000)
        big = await c.post("/", content=chunks())
    assert small.status_code == 200
    assert big.status_code == 413
