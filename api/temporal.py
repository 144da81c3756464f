"""The API's Temporal connection, made lazily.

The API must start and keep accepting inquiries while Temporal is down (DESIGN §7: a lead is never
lost), so start-up makes one short connection attempt and, failing that, a background task keeps
trying with backoff. Request handlers never wait for a connection: with no client they leave the
work to the relay. Once connected, the SDK client reconnects by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from temporalio.client import Client

from runtime.settings import Settings
from runtime.temporal_client import connect

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 5.0

Connector = Callable[[Settings], Awaitable[Client]]


class TemporalConnection:
    def __init__(self, settings: Settings, *, connector: Connector = connect) -> None:
        self._settings = settings
        self._connector = connector
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self.client: Client | None = None

    async def start(self) -> None:
        """One quick attempt now; keep trying in the background if it fails."""
        if await self.try_connect() is None:
            self._task = asyncio.create_task(self._keep_trying(), name="temporal-connect")

    async def try_connect(self) -> Client | None:
        if self.client is not None:
            return self.client
        async with self._lock:
            if self.client is None:
                try:
                    self.client = await asyncio.wait_for(
                        self._connector(self._settings),
                        timeout=self._settings.temporal_start_timeout_seconds,
                    )
                    log.info("connected to Temporal")
                except Exception as exc:  # any failure means "not yet": the relay catches up
                    self._failures += 1
                    # The first failure, then about once a minute: not a line every few seconds.
                    level = logging.WARNING if self._failures % 12 == 1 else logging.DEBUG
                    log.log(level, "Temporal unavailable (%s); retrying", type(exc).__name__)
        return self.client

    async def _keep_trying(self) -> None:
        delay = min(self._settings.relay_interval_seconds, MAX_RETRY_DELAY_SECONDS)
        while self.client is None:
            await asyncio.sleep(delay)
            await self.try_connect()
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # The SDK client has no close(); dropping the reference releases its channel.
        self.client = None
