"""Vendor HTTP pacing and backoff, with a recorded (not real) sleep."""

from __future__ import annotations

import httpx
import pytest

from integrations.http import RATE_LIMITS, RETRIES, RateLimiter, VendorError, request


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _client(statuses: list[int], headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    answers = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), headers=headers or {}, json={})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_429_and_5xx_are_retried_with_growing_backoff_then_succeed() -> None:
    sleeps = Sleeps()
    limiter = RateLimiter(1000, sleeps)
    async with _client([503, 429, 502, 200]) as http:
        r = await request(http, limiter, "GET", "https://vendor.example.com/x", sleep=sleeps)
    assert r.status_code == 200
    backoffs = [s for s in sleeps.calls if s >= 0.5]
    assert backoffs == sorted(backoffs) and len(backoffs) == 3


async def test_retry_after_is_honoured() -> None:
    sleeps = Sleeps()
    async with _client([429, 200], {"retry-after": "7"}) as http:
        await request(http, RateLimiter(1000, sleeps), "GET", "https://v.example.com", sleep=sleeps)
    assert 7.0 in sleeps.calls


async def test_gives_up_after_the_retries_with_the_status_only() -> None:
    sleeps = Sleeps()
    async with _client([500] * (RETRIES + 1)) as http:
        with pytest.raises(VendorError) as caught:
            await request(
                http, RateLimiter(1000, sleeps), "GET", "https://v.example.com", sleep=sleeps
            )
    assert caught.value.status == 500


async def test_client_errors_are_answers_not_retries() -> None:
    sleeps = Sleeps()
    async with _client([404]) as http:
        r = await request(
            http, RateLimiter(1000, sleeps), "GET", "https://v.example.com", sleep=sleeps
        )
    assert r.status_code == 404 and not [s for s in sleeps.calls if s >= 0.5]


async def test_rate_limiter_spaces_requests_at_the_vendor_rate() -> None:
    """Nextech: 20 requests/s, so a burst of 21 waits about a second in total (recorded)."""
    sleeps = Sleeps()
    limiter = RateLimiter(RATE_LIMITS["nextech"], sleeps)
    for _ in range(21):
        await limiter.wait()
    assert RATE_LIMITS["nextech"] == 20.0
    # The recorded sleep does not pass time, so each start waits for its slot: the 21st is
    # scheduled a second after the first, i.e. 20 starts per second.
    assert len(sleeps.calls) == 20
    assert max(sleeps.calls) == pytest.approx(1.0, abs=0.05)
