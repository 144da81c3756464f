"""Pure ASGI middleware: the body size limit and the last-resort error shield.

Pure ASGI (not BaseHTTPMiddleware) so the size limit can count bytes as they stream in: a client
may omit Content-Length (chunked) or lie about it."""

from __future__ import annotations

import json
import logging
import traceback

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import DATABASE_UNAVAILABLE, database_unavailable

log = logging.getLogger(__name__)

RETRY_AFTER = 5  # seconds: a database failover or restart is usually over by then


class _BodyTooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, detail: str, retry_after: int | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """413 for a request body over `max_bytes` (or a path prefix's own limit in `overrides`:
    the history import takes whole exports), declared or streamed."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, overrides: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.overrides = overrides

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        max_bytes = next(
            (limit for prefix, limit in self.overrides if path.startswith(prefix)),
            self.default_max_bytes,
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not declared.isdigit():
            await _send_json(send, 400, "invalid Content-Length")
            return
        if declared is not None and int(declared) > max_bytes:
            await _send_json(send, 413, "request body too large")
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # whatever the app answers to the aborted read, the answer is 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if started:
                raise
        if exceeded and not started:
            await _send_json(send, 413, "request body too large")


class ErrorShield:
    """A 500 for a bug, logged without the exception's message: database errors carry SQL
    parameters, i.e. PHI. The traceback's frames (file, line, function) are enough to debug."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except _BodyTooLarge:
            raise
        except Exception as exc:
            if database_unavailable(exc):
                # Not a bug: the database is briefly out of reach. The request's transaction
                # rolled back whole (nothing half-written); the client should simply retry.
                DATABASE_UNAVAILABLE.inc()
                log.warning(
                    "database unavailable (%s) on %s %s",
                    type(exc).__name__,
                    scope["method"],
                    scope["path"],
                )
                if not started:
                    await _send_json(
                        send, 503, "database unavailable, retry shortly", retry_after=RETRY_AFTER
                    )
                return
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error(
                "unhandled %s on %s %s\n%s",
                type(exc).__name__,
                scope["method"],
                scope["path"],
                frames,
            )
            if not started:
                await _send_json(send, 500, "internal error")
