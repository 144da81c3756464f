"""Start a journey for a committed inquiry: signal-with-start keyed by the journey's workflow id.

Used by the inquiry endpoint (right after commit) and by the relay (for whatever that missed).
Both may race on the same inquiry: harmless, because signal-with-start never starts twins and the
workflow drops an inquiry id it has already seen. Only ids, enums and times reach Temporal here."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client

from models.enums import Channel, InquiryStatus, JourneyStatus, RevenueLine, Stage
from models.journey_types import (
    JOURNEY_WORKFLOW_NAME,
    SIGNAL_INQUIRY,
    InquirySignal,
    JourneyInput,
)
from models.tables import Inquiry, Journey, Patient, Practice, utcnow
from runtime.db import session_scope
from runtime.settings import Settings
from runtime.temporal_client import journey_search_attributes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartPlan:
    """Everything a start needs, PHI-free: the patient's contact details reduce to channels."""

    inquiry_id: uuid.UUID
    journey_id: uuid.UUID
    practice_id: uuid.UUID
    patient_id: uuid.UUID
    workflow_id: str
    revenue_line: RevenueLine
    channel: str
    service: str | None
    received_at: datetime
    timezone: str
    channels: tuple[Channel, ...]


def reachable_channels(patient: Patient) -> tuple[Channel, ...]:
    """The channels the journey can use; opting out of all of them ends it."""
    channels = [Channel.SMS] if patient.phone else []
    if patient.email:
        channels.append(Channel.EMAIL)
    return tuple(channels)


def make_plan(
    inquiry: Inquiry, journey: Journey, patient: Patient, practice: Practice
) -> StartPlan:
    return StartPlan(
        inquiry_id=inquiry.id,
        journey_id=journey.id,
        practice_id=practice.id,
        patient_id=patient.id,
        workflow_id=journey.workflow_id,
        revenue_line=RevenueLine(journey.revenue_line),
        channel=inquiry.channel,
        service=inquiry.service,
        received_at=inquiry.received_at,
        timezone=practice.timezone,
        channels=reachable_channels(patient),
    )


def load_received_plans(engine: Engine, received_before: datetime, limit: int) -> list[StartPlan]:
    """Inquiries not yet journeyed, oldest first."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Inquiry, Journey, Patient, Practice)
            .join(Journey, col(Journey.id) == col(Inquiry.journey_id))
            .join(Patient, col(Patient.id) == col(Inquiry.patient_id))
            .join(Practice, col(Practice.id) == col(Inquiry.practice_id))
            .where(Inquiry.status == InquiryStatus.RECEIVED.value)
            .where(col(Inquiry.received_at) < received_before)
            .order_by(col(Inquiry.received_at), col(Inquiry.id))
            .limit(limit)
        ).all()
        return [make_plan(*row) for row in rows]


async def start_journey(
    client: Client, settings: Settings, engine: Engine, plan: StartPlan
) -> bool:
    """True when Temporal accepted the start (or the signal to a running journey)."""
    line = plan.revenue_line
    try:
        await asyncio.wait_for(
            client.start_workflow(
                JOURNEY_WORKFLOW_NAME,
                JourneyInput(
                    journey_id=str(plan.journey_id),
                    practice_id=str(plan.practice_id),
                    patient_id=str(plan.patient_id),
                    revenue_line=line,
                    channels=list(plan.channels),
                    timezone=plan.timezone,
                ),
                id=plan.workflow_id,
                task_queue=settings.temporal_task_queue,
                start_signal=SIGNAL_INQUIRY,
                start_signal_args=[
                    InquirySignal(
                        id=str(plan.inquiry_id),
                        at=plan.received_at,
                        channel=plan.channel,
                        service=plan.service,
                    )
                ],
                search_attributes=journey_search_attributes(
                    str(plan.practice_id), str(plan.patient_id), line.value, Stage.INQUIRY.value
                ),
                static_summary=f"{line.value} journey",
            ),
            timeout=settings.temporal_start_timeout_seconds,
        )
    except Exception as exc:  # down, slow or refusing: the inquiry is safe, the relay retries
        log.warning(
            "journey start deferred to the relay: inquiry=%s error=%s",
            plan.inquiry_id,
            type(exc).__name__,
        )
        await asyncio.to_thread(_count_attempt, engine, plan.inquiry_id)
        return False
    await asyncio.to_thread(_mark_started, engine, plan)
    return True


def _count_attempt(engine: Engine, inquiry_id: uuid.UUID) -> None:
    with session_scope(engine) as session:
        session.execute(
            sa.update(Inquiry)
            .where(col(Inquiry.id) == inquiry_id)
            .values(attempts=col(Inquiry.attempts) + 1)
        )
        session.commit()


def _mark_started(engine: Engine, plan: StartPlan) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(
            sa.update(Inquiry)
            .where(col(Inquiry.id) == plan.inquiry_id)
            .where(col(Inquiry.status) == InquiryStatus.RECEIVED.value)
            .values(
                status=InquiryStatus.JOURNEY_STARTED.value,
                started_at=now,
                attempts=col(Inquiry.attempts) + 1,
            )
        )
        # Only a still-pending row: the worker may already have written the live status.
        session.execute(
            sa.update(Journey)
            .where(col(Journey.id) == plan.journey_id)
            .where(col(Journey.status) == JourneyStatus.PENDING.value)
            .values(status=JourneyStatus.ACTIVE.value, updated_at=now)
        )
        session.commit()
