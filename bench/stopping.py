"""How a benchmark stops: `run` is `asyncio.run` that also takes SIGTERM as a stop.

A benchmark starts servers of its own (the Temporal dev server, the worker, the API, each in its
own session so a stop can take its children too) and stops them in `finally` blocks. Ctrl-C
reaches those blocks through asyncio's own SIGINT handling; `kill PID` did not — Python's default
for SIGTERM ends the process on the spot and leaves every server it started running. A run left
in the background (`nohup … &`) can only be stopped that way, because a non-interactive shell
starts background jobs with SIGINT ignored.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

EXIT_ON_SIGTERM = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main`; on SIGTERM cancel it (its `finally` blocks stop what it started) and exit
    with status 143."""

    async def guarded() -> T:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await main

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        print("stopped by SIGTERM; the servers it started are stopped", file=sys.stderr)
        raise SystemExit(EXIT_ON_SIGTERM) from None
