"""In-process token buckets for public write endpoints (POST /v1/inquiries), per key and per IP.

One process, one set of buckets: with several API replicas each enforces its own limit, so the
effective limit is replicas x the setting. A shared limiter (Redis, or the load balancer's) is
what a multi-replica deployment needs; see docs/architecture.md."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_BUCKETS = 10_000  # oldest buckets are forgotten first: memory stays bounded under a spray


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """`rate_per_minute` requests a minute per key, bursts up to the same number."""

    def __init__(self, rate_per_minute: int) -> None:
        self.capacity = float(rate_per_minute)
        self.refill_per_second = rate_per_minute / 60.0
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 if a token was taken; otherwise the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(self.capacity, now)
            bucket.tokens = min(
                self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_second
            )
            bucket.updated = now
            self._buckets[key] = bucket
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.refill_per_second

    def refund(self, key: str) -> None:
        """Give back a token taken for a request that another limit then refused."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.tokens = min(self.capacity, bucket.tokens + 1)


def retry_after_header(wait_seconds: float) -> str:
    return str(max(1, math.ceil(wait_seconds)))
