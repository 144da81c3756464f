"""Vendor HTTP: a per-integration request rate limit and bounded retries with backoff.

The limit paces requests (Nextech allows 20 requests per second per practice); retries cover 429
and 5xx answers and transport errors, honouring Retry-After, before the error goes up to the
Temporal activity, whose own retry policy backs off further. Errors carry status codes and
exception types only: vendor bodies may quote patient data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

RATE_LIMITS = {"nextech": 20.0, "modmed": 10.0, "4d": 5.0, "patientnow": 5.0, "fhir_r4": 10.0}
RETRIES = 4
BACKOFF_BASE_S = 0.5
MAX_RETRY_AFTER_S = 30.0

Sleep = Callable[[float], Awaitable[None]]


class VendorError(RuntimeError):
    """A vendor call that failed for good. `status` is the HTTP status when there was one."""

    def __init__(self, what: str, status: int | None = None) -> None:
        super().__init__(f"{what} (HTTP {status})" if status else what)
        self.status = status


class RateLimiter:
    """At most `per_second` request starts per second (a minimum spacing between starts)."""

    def __init__(self, per_second: float, sleep: Sleep = asyncio.sleep) -> None:
        self._spacing = 1.0 / per_second
        self._next = 0.0
        self._lock = asyncio.Lock()
        self._sleep = sleep

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await self._sleep(self._next - now)
                now = time.monotonic()
            self._next = max(now, self._next) + self._spacing


def _retry_after(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("retry-after")
    if header and header.isdigit():
        return min(float(header), MAX_RETRY_AFTER_S)
    return BACKOFF_BASE_S * 2**attempt


async def request(
    http: httpx.AsyncClient,
    limiter: RateLimiter,
    method: str,
    url: str,
    *,
    sleep: Sleep = asyncio.sleep,
    **kwargs: Any,
) -> httpx.Response:
    """The response (any status below 500 but 429); retried with backoff otherwise."""
    for attempt in range(RETRIES + 1):
        await limiter.wait()
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            if attempt == RETRIES:
                raise VendorError(f"vendor unreachable: {type(exc).__name__}") from None
            await sleep(BACKOFF_BASE_S * 2**attempt)
            continue
        if response.status_code == 429 or response.status_code >= 500:
            if attempt == RETRIES:
                raise VendorError("vendor kept failing", response.status_code)
            await sleep(_retry_after(response, attempt))
            continue
        return response
    raise AssertionError("unreachable")
