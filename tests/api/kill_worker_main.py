"""A worker process for the exactly-once test: the real worker, its SMS provider the real
Twilio library sending to the test's fake Twilio server (FAKE_TWILIO_URL). Settings come from
the environment like any worker's. The test kills it with SIGKILL mid-send."""

from __future__ import annotations

import asyncio
import os

from activities.channels import TwilioProvider
from runtime.db import make_engine
from runtime.settings import Settings
from runtime.temporal_client import connect
from tests.fakes import Forwarding
from worker import build_worker


async def main() -> None:
    settings = Settings(_env_file=None)
    engine = make_engine(settings.database_url)
    provider = TwilioProvider(
        "AC" + "1" * 32,
        "token",
        "MG" + "0" * 32,
        settings.public_base_url,
        http_client=Forwarding(os.environ["FAKE_TWILIO_URL"]),
    )
    client = await connect(settings)
    async with build_worker(client, settings, engine, provider=provider):
        print("polling", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
