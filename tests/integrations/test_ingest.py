"""Ingest below the API, on both databases: appointment snapshots become the right journey
events (or none), repeats and out-of-order facts change nothing. Journeys are rows here: no
Temporal, the events stay pending exactly as the relay would find them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from integrations.ingest import ingest
from integrations.model import ApptStatus, Kind, NormalizedEvent, PatientRef
from models.tables import EmrInboundEvent, Integration, JourneyEventRow, PatientExternalId
from tests.seed import Seeded, seed_journey

START = datetime(2027, 1, 5, 15, 0, tzinfo=UTC)


def _integration(engine: Engine, seeded: Seeded) -> Integration:
    with Session(engine, expire_on_commit=False) as session:
        row = Integration(
            practice_id=seeded.practice.id,
            vendor="fhir_r4",
            name="fhir",
            credentials="{}",
            service_map={"TOX20": "botox"},
        )
        session.add(row)
        session.commit()
        return row


def _snapshot(n: int, status: ApptStatus, start: datetime = START) -> NormalizedEvent:
    return NormalizedEvent(
        kind=Kind.APPOINTMENT_OBSERVED,
        vendor_event_id=f"Appointment/a1/{n}",
        patient=PatientRef(vendor_id="p1", phone="(415) 555-0123"),
        appointment_id="a1",
        appointment_at=start,
        status=status,
        services=["TOX20"],
    )


def _run(engine: Engine, integration: Integration, *events: NormalizedEvent) -> list[str]:
    with Session(engine) as session:
        row = session.get(Integration, integration.id)
        assert row is not None
        return ingest(session, row, list(events), "poll").outcomes


def _journey_events(engine: Engine, seeded: Seeded) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(
            select(JourneyEventRow)
            .where(JourneyEventRow.journey_id == seeded.journey.id)
            .order_by(JourneyEventRow.received_at)  # type: ignore[arg-type]
        ).all()
        return [r.type for r in rows]


def test_snapshots_become_transitions_once(engine: Engine) -> None:
    seeded = seed_journey(engine)
    integration = _integration(engine, seeded)
    moved = START + timedelta(days=1)
    outcomes = _run(
        engine,
        integration,
        _snapshot(1, ApptStatus.TENTATIVE),  # proposed: nothing yet
        _snapshot(2, ApptStatus.BOOKED),
        _snapshot(3, ApptStatus.BOOKED),  # same time again: nothing
        _snapshot(4, ApptStatus.BOOKED, moved),
        _snapshot(5, ApptStatus.CANCELLED, moved),
        _snapshot(6, ApptStatus.BOOKED, moved),  # booked again after the cancellation
        _snapshot(7, ApptStatus.NO_SHOW, moved),
        _snapshot(7, ApptStatus.NO_SHOW, moved),  # the same vendor event twice
    )
    assert outcomes == [
        "ignored", "applied", "ignored", "applied", "applied", "applied", "applied", "duplicate",
    ]  # fmt: skip
    assert _journey_events(engine, seeded) == [
        "consult_booked",
        "appointment_rescheduled",
        "appointment_cancelled",
        "consult_booked",
        "no_show",
    ]
    with Session(engine) as session:
        link = session.exec(select(PatientExternalId)).one()
        assert (link.patient_id, link.vendor_patient_id) == (seeded.patient.id, "p1")
        heard = session.exec(select(EmrInboundEvent)).all()
        assert len(heard) == 7  # the duplicate left no row


def test_cancelling_what_was_never_booked_tells_nothing(engine: Engine) -> None:
    seeded = seed_journey(engine)
    integration = _integration(engine, seeded)
    assert _run(engine, integration, _snapshot(1, ApptStatus.CANCELLED)) == ["ignored"]
    assert _journey_events(engine, seeded) == []


def test_an_arrival_for_a_stranger_is_unmatched(engine: Engine) -> None:
    seeded = seed_journey(engine)
    integration = _integration(engine, seeded)
    stranger = _snapshot(1, ApptStatus.ARRIVED)
    stranger.patient = PatientRef(vendor_id="p9", phone="(415) 555-0177")
    assert _run(engine, integration, stranger) == ["unmatched"]
    assert _journey_events(engine, seeded) == []


def test_treatment_carries_the_mapped_service_and_amount(engine: Engine) -> None:
    seeded = seed_journey(engine)
    integration = _integration(engine, seeded)
    invoice = NormalizedEvent(
        kind=Kind.TREATMENT_COMPLETED,
        vendor_event_id="inv-1",
        patient=PatientRef(email="ADA@example.com"),
        services=["TOX20"],
        amount=450.0,
        invoice_id="inv-1",
    )
    assert _run(engine, integration, invoice) == ["applied"]
    with Session(engine) as session:
        row = session.exec(select(JourneyEventRow)).one()
    assert (row.type, row.payload["service"], row.payload["amount"]) == (
        "treatment_completed",
        "botox",
        450.0,
    )
