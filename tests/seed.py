"""Seed rows directly, for tests below the API (workflow and activity tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.enums import RevenueLine
from models.journey_types import journey_workflow_id
from models.tables import Journey, Patient, Practice


@dataclass
class Seeded:
    practice: Practice
    patient: Patient
    journey: Journey


def seed_journey(
    engine: Engine,
    *,
    line: RevenueLine = RevenueLine.INJECTABLES,
    state: str = "CA",
    timezone: str = "America/Los_Angeles",
    phone: str | None = "+14155550123",
    email: str | None = "ada@example.com",
    sms_consent: bool = True,
    email_consent: bool = True,
    first_name: str = "Ada",
    last_name: str = "Lovelace",
) -> Seeded:
    with Session(engine, expire_on_commit=False) as session:
        practice = Practice(
            name="Glow Aesthetics",
            timezone=timezone,
            state=state,
            booking_url="https://book.example.com/glow",
            review_url="https://reviews.example.com/glow",
            revenue_lines=[line.value for line in RevenueLine],
        )
        session.add(practice)
        session.flush()
        patient = Patient(
            practice_id=practice.id,
            first_name=first_name,
            last_name=last_name,
            phone=phone,
            email=email,
            timezone=timezone,
            state=state,
            sms_consent=sms_consent,
            email_consent=email_consent,
        )
        session.add(patient)
        session.flush()
        journey = Journey(
            practice_id=practice.id,
            patient_id=patient.id,
            revenue_line=line.value,
            workflow_id=journey_workflow_id(str(practice.id), str(patient.id), line),
        )
        session.add(journey)
        session.commit()
        return Seeded(practice, patient, journey)


def suppress(
    engine: Engine, patient_id: uuid.UUID, *, sms: bool = False, email: bool = False
) -> None:
    """What the API does on an opt-out: the gate reads suppression from the database."""
    with Session(engine) as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None
        patient.sms_suppressed = sms
        patient.email_suppressed = email
        session.add(patient)
        session.commit()
