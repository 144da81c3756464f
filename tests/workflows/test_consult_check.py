"""The consult time passed and neither arrival nor no-show was heard: three hours later the
journey asks the EMR (a fake FHIR R4 server here, through the real EMR activity and `httpx`),
and the answer moves it as the event would have."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session

from integrations import secrets
from models.enums import EventType
from models.tables import EmrAppointment, Integration
from tests.conftest import encrypted_settings
from tests.integrations import fake_vendor
from tests.seed import Seeded
from tests.workflows.conftest import Harness

H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def fake() -> Iterator[fake_vendor.FakeVendor]:
    with fake_vendor.running() as vendor:
        yield vendor


def link_to_emr(h: Harness, seeded: Seeded, fake: fake_vendor.FakeVendor, status: str) -> None:
    """The journey's booking came from a FHIR EMR, which now says `status` about it."""
    integration_id = uuid.uuid4()
    keys = encrypted_settings().payload_keys
    with Session(h.engine) as session:
        session.add(
            Integration(
                id=integration_id,
                practice_id=seeded.practice.id,
                vendor="fhir_r4",
                name="emr",
                base_url=f"{fake.url}/fhir_r4",
                credentials=secrets.seal(keys, str(integration_id), {}),
                service_map={},
            )
        )
        session.flush()  # the appointment refers to it
        session.add(
            EmrAppointment(
                integration_id=integration_id,
                vendor_appointment_id="appt-9",
                patient_id=seeded.patient.id,
                journey_id=seeded.journey.id,
                status="booked",
            )
        )
        session.commit()
    fake.state("fhir_r4").appointments["appt-9"] = {
        "resourceType": "Appointment",
        "id": "appt-9",
        "status": status,
        "start": "2027-03-03T22:00:00Z",
        "meta": {"lastUpdated": "2027-03-03T23:00:00Z"},
        "participant": [{"actor": {"reference": "Patient/p-9"}, "status": "accepted"}],
    }


async def booked(h: Harness, seeded: Seeded) -> tuple[object, datetime]:
    handle = await h.start(seeded, service="botox")
    appointment = (await h.now()) + 2 * D
    await h.signal(handle, EventType.CONSULT_BOOKED, appointment_at=appointment)
    return handle, appointment


@pytest.mark.parametrize(
    ("status", "stage", "reason"),
    [
        ("fulfilled", "treatment", "consult attended"),
        ("noshow", "consult_show", "no-show"),
        ("cancelled", "speed_to_lead", "appointment cancelled"),
    ],
)
async def test_the_emr_answers_for_a_silent_consult(
    harness: Harness, fake: fake_vendor.FakeVendor, status: str, stage: str, reason: str
) -> None:
    seeded = harness.seed()
    link_to_emr(harness, seeded, fake, status)
    _, appointment = await booked(harness, seeded)
    await harness.advance_to(appointment + 4 * H)
    last = harness.stages(seeded)[-1]
    assert (last.to_stage, last.reason) == (stage, reason)
    assert "consult_outcome_unknown" not in harness.tasks(seeded)
    assert "GET /fhir_r4/Appointment/appt-9" in fake.state("fhir_r4").requests


async def test_without_an_emr_staff_are_asked(harness: Harness) -> None:
    seeded = harness.seed()
    _, appointment = await booked(harness, seeded)
    await harness.advance_to(appointment + 2 * D + H)
    assert harness.stages(seeded)[-1].to_stage == "consult_show"
    assert "consult_outcome_unknown" in harness.tasks(seeded)
