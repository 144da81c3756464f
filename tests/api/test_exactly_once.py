"""Exactly once (DESIGN §9): the worker is killed (SIGKILL) after Twilio accepted a message and
before the send activity completed. After recovery the provider has received it once, and the
ledger says sent: Twilio's status callback, which names the ledger row, recorded what the dead
activity could not, and the retried activity found the message settled instead of sending it
again. (Without the callback the retry refuses to risk a second text: tests/activities.)"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from activities.channels import TwilioProvider
from models.tables import Message
from runtime.settings import PROJECT_ROOT
from tests.api.conftest import StackFactory, eventually, sqlite_url, temporal_address
from tests.conftest import TEST_PAYLOAD_KEYS
from tests.fakes import Forwarding, twilio_server
from worker import build_worker

TOKEN = "exactly-once-token"
BASE = "https://api.glow.example.com"
# Recovery waits on Temporal's own timeouts (the dead worker's workflow task), not on a sleep.
RECOVERY_S = 90.0


def ledger(engine: object, patient_id: str) -> list[Message]:
    with Session(engine) as s:  # type: ignore[arg-type]
        return list(
            s.exec(select(Message).where(Message.patient_id == uuid.UUID(patient_id))).all()
        )


def _spawn(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """The worker in its own process: SIGKILL it and nothing of it survives (a real crash)."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.api.kill_worker_main"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
        )


async def test_worker_killed_after_the_provider_accepted_sends_once(
    api_stack: StackFactory, temporal_dev: WorkflowEnvironment, tmp_path: Path
) -> None:
    queue = f"kill-{uuid.uuid4()}"
    url = sqlite_url(tmp_path)
    with twilio_server() as fake:
        async with api_stack(
            url, worker=False, task_queue=queue, twilio_auth_token=TOKEN, public_base_url=BASE
        ) as api:
            env = os.environ | {
                "ENVIRONMENT": "test",
                "DATABASE_URL": url,
                "TEMPORAL_ADDRESS": temporal_address(temporal_dev),
                "TEMPORAL_TASK_QUEUE": queue,
                "PAYLOAD_ENCRYPTION_KEYS": TEST_PAYLOAD_KEYS,
                "PUBLIC_BASE_URL": BASE,
                "FAKE_TWILIO_URL": fake.base_url,
            }
            worker = _spawn(env, tmp_path / "worker.log")
            try:
                assert worker.stdout is not None
                ready = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), 60)
                assert ready.strip() == b"polling", (tmp_path / "worker.log").read_text()

                def kill() -> None:  # Twilio has the message; the activity never hears back
                    worker.kill()
                    worker.wait()

                fake.after_accept = kill
                tenant = await api.create_practice()
                lead = await api.lead(tenant, phone="+12125550142", email=None)

                async def killed() -> bool:
                    return worker.poll() is not None

                await eventually(killed, "the worker to die mid-send", within=60)
            finally:
                if worker.poll() is None:
                    worker.kill()
                worker.wait()

            assert len(fake.accepted) == 1
            (row,) = ledger(api.engine, lead["patient_id"])
            assert row.status == "sending" and row.provider_id is None

            # Twilio's status callback arrives (signed), naming the ledger row.
            callback = urlsplit(fake.accepted[0]["StatusCallback"])
            params = {"MessageSid": fake.accepted[0]["sid"], "MessageStatus": "sent"}
            full = f"{BASE}{callback.path}?{callback.query}"
            signature = RequestValidator(TOKEN).compute_signature(full, params)
            r = await api.http.post(
                f"{callback.path}?{callback.query}",
                data=params,
                headers={"X-Twilio-Signature": signature},
            )
            assert r.status_code == 204, r.text

            # Recovery: a new worker takes the journey over (the dead one's workflow task times
            # out), the local activity runs again, finds the message settled.
            provider = TwilioProvider(
                "AC" + "1" * 32,
                "token",
                "MG" + "0" * 32,
                BASE,
                http_client=Forwarding(fake.base_url),
            )
            async with build_worker(
                temporal_dev.client, api.settings, api.engine, task_queue=queue, provider=provider
            ):

                async def recovered() -> bool:
                    journey = await api.journey(tenant, lead["journey_id"])
                    return journey["stage"] == "speed_to_lead"

                await eventually(recovered, "the journey to carry on", within=RECOVERY_S)

            assert len(fake.accepted) == 1, "the message was sent twice"
            (row,) = ledger(api.engine, lead["patient_id"])
            assert (row.status, row.provider_id) == ("sent", fake.accepted[0]["sid"])
            assert row.attempts == 1
