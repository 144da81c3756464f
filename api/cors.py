"""CORS for the codec server only.

The Temporal UI runs in the browser on its own origin and calls `/codec/*` from there, so those
paths need CORS (credentials allowed, the UI's headers allowed, preflight answered). The rest of
the API is called by servers and integrations, not browsers: it gets no CORS headers at all, so
a page on the UI's origin cannot script the practice API with a user's credentials."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

CODEC_PREFIX = "/codec"
# What the Temporal UI sends: its access token (when configured), JSON, and the namespace.
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Namespace"]


class CodecCORS:
    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_credentials=True,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=ALLOWED_HEADERS,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        is_codec = path == CODEC_PREFIX or path.startswith(CODEC_PREFIX + "/")
        if scope["type"] == "http" and is_codec:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
