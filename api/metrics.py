"""The API's Prometheus metrics, served at GET /metrics (api/routers/metrics.py).

Process-wide (prometheus_client's default registry, which also carries the process collector:
RSS, CPU, open files), so several apps in one process (the tests) share the counters.

Labels are bounded: method, route *template* (`/v1/journeys/{journey_id}`, never the path with
its ids), status code, inquiry channel, backlog kind. No patient, journey or practice id is ever a
label: per-practice figures belong to the funnel (the database), not to a time-series store with a
cardinality limit. The worker serves its own metrics (activities/metrics.py)."""

from __future__ import annotations

import time

import sqlalchemy as sa
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.engine import Engine
from sqlmodel import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.enums import EventStatus, InquiryStatus
from models.tables import Inquiry, JourneyEventRow
from runtime.db import session_scope

INQUIRIES = Counter(
    "journeys_inquiries_accepted",
    "New inquiries committed (an idempotent repeat is not counted), by channel",
    ["channel"],
)
REQUESTS = Counter(
    "journeys_http_requests",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "journeys_http_request_duration_seconds",
    "HTTP request handling time by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RELAY_BACKLOG = Gauge(
    "journeys_relay_backlog",
    "Waiting for the relay: inquiries whose journey is not started, events not delivered",
    ["kind"],
)
RELAY_ROUNDS = Counter(
    "journeys_relay_items",
    "What relay rounds did: journeys started, failed starts, events delivered",
    ["outcome"],
)
DATABASE_UNAVAILABLE = Counter(
    "journeys_database_unavailable", "Requests answered 503 because the database was unreachable"
)

UNMATCHED = "unmatched"  # 404s and the like: one label, whatever path was asked for


def update_backlog(engine: Engine) -> None:
    """Read at scrape time: two indexed counts, so the gauge is never stale."""
    with session_scope(engine) as session:
        inquiries = session.exec(
            select(func.count())
            .select_from(Inquiry)
            .where(Inquiry.status == InquiryStatus.RECEIVED.value)
        ).one()
        events = session.exec(
            select(func.count())
            .select_from(JourneyEventRow)
            .where(JourneyEventRow.status == EventStatus.PENDING.value)
        ).one()
    RELAY_BACKLOG.labels("inquiries").set(inquiries)
    RELAY_BACKLOG.labels("events").set(events)


def database_unavailable(exc: BaseException) -> bool:
    """A connection that could not be made or was lost (not a bug, not a constraint): the client
    should retry shortly. SQLite's `database is locked` lands here too, and means the same."""
    return isinstance(
        exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError
    ) or (isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated)


class RequestMetrics:
    """Pure ASGI: counts every answer, including the 413s and 500s of the inner middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            REQUEST_SECONDS.labels(method, template).observe(time.perf_counter() - started)
