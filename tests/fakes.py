"""In-process fakes for the providers' HTTP APIs, driven by the real `twilio` and `sendgrid`
libraries: Twilio's Client takes a custom `http_client`; SendGrid's client takes `host=`, so it
talks to a real HTTP server on 127.0.0.1 run by the test process."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests
from twilio.http import HttpClient
from twilio.http.response import Response


@dataclass
class TwilioFake(HttpClient):
    """Twilio's REST API for Messages.create: records each accepted message; `errors` are
    answered first, one per call, as (HTTP status, Twilio error code)."""

    errors: list[tuple[int, int]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    # Runs after a message is accepted, before the answer goes back (to kill a worker there).
    after_accept: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        assert method == "POST" and url.endswith("/Messages.json"), url
        with self.lock:
            if self.errors:
                status, code = self.errors.pop(0)
                body = {"code": code, "message": "refused", "status": status, "more_info": ""}
                return Response(status, json.dumps(body))
            sid = f"SM{len(self.accepted):032d}"
            self.accepted.append(dict(data or {}) | {"sid": sid})
        if self.after_accept is not None:
            self.after_accept()
        answer = {
            "sid": sid,
            "status": "accepted",
            "to": (data or {}).get("To"),
            "messaging_service_sid": (data or {}).get("MessagingServiceSid"),
        }
        return Response(201, json.dumps(answer))


@dataclass
class SendGridFake:
    """SendGrid's v3 mail/send on a local port; `base_url` goes to SendGridAPIClient(host=)."""

    base_url: str = ""
    statuses: list[int] = field(default_factory=list)  # answered first, one per call
    accepted: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def sendgrid_fake() -> Iterator[SendGridFake]:
    fake = SendGridFake()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            assert self.path == "/v3/mail/send", self.path
            assert self.headers.get("Authorization", "").startswith("Bearer ")
            status = fake.statuses.pop(0) if fake.statuses else 202
            if status == 202:
                fake.accepted.append(body)
            self.send_response(status)
            self.send_header("X-Message-Id", f"sg-{len(fake.accepted)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test output is not a request log

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class TwilioServer:
    """Twilio's Messages endpoint as a real HTTP server on 127.0.0.1 (for a worker in another
    process). `after_accept` runs once a message is recorded, before the answer is written."""

    base_url: str = ""
    accepted: list[dict[str, str]] = field(default_factory=list)
    after_accept: Callable[[], None] | None = None


@contextmanager
def twilio_server() -> Iterator[TwilioServer]:
    from urllib.parse import parse_qsl

    fake = TwilioServer()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            data = dict(parse_qsl(self.rfile.read(length).decode()))
            with lock:
                sid = f"SM{len(fake.accepted):032d}"
                fake.accepted.append(data | {"sid": sid})
                hook, fake.after_accept = fake.after_accept, None
            if hook is not None:
                hook()
            answer = json.dumps({"sid": sid, "status": "accepted"}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


class Forwarding(HttpClient):
    """The twilio library's HTTP client, sending to `base_url` instead of api.twilio.com."""

    def __init__(self, base_url: str) -> None:
        super().__init__(logger=logging.getLogger("twilio-fake"), is_async=False)
        self.base_url = base_url

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        target = self.base_url + urlsplit(url).path
        answer = requests.post(target, data=data, headers=headers, auth=auth, timeout=10)
        return Response(answer.status_code, answer.text, answer.headers)
