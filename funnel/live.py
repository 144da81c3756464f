"""The live journeys' rows as funnel data: stage events, inquiries with their first answer,
treatment amounts (from the treatment_completed events) and the asks that went out.

Read-only and PHI-free: ids, stages, times, amounts. Message bodies are never loaded."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlmodel import Session, col, select

from funnel.metrics import Ask, FunnelData, Lead, Transition, Treatment
from models.enums import (
    Direction,
    EventStatus,
    EventType,
    InquiryStatus,
    MessageKind,
    MessageStatus,
    Stage,
)
from models.tables import Inquiry, Journey, JourneyEventRow, Message, Patient, StageEvent

MessageRow = tuple[uuid.UUID | None, datetime | None, str | None, str, str]
InquiryRow = tuple[uuid.UUID, uuid.UUID, str, datetime, uuid.UUID | None]
SENT = (MessageStatus.SENT.value, MessageStatus.DELIVERED.value)


def _seq(key: str) -> int:
    tail = key.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def _parse(value: object, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return fallback
        return parsed if parsed.tzinfo else fallback
    return fallback


def recovery_cause(sent: list[tuple[datetime, str | None, str, str]]) -> str | None:
    """What automation brought a treatment back, from the messages sent in its window (since
    the journey's previous treatment): (sent_at, stage, kind, template) tuples."""
    stages = {(stage, kind, template.split("_")[0]) for _, stage, kind, template in sent}
    if any(stage == Stage.REACTIVATION.value for stage, _, _ in stages):
        return "reactivation"
    if any(stage == Stage.CONSULT_SHOW.value and head == "no" for stage, _, head in stages):
        return "no_show_recovery"
    marketing = MessageKind.MARKETING.value
    if any(stage == Stage.TREATMENT.value and kind == marketing for stage, kind, _ in stages):
        return "quote_follow_up"
    if any(stage == Stage.REBOOK.value and head == "recall" for stage, _, head in stages):
        return "recall"
    return None


def load(session: Session, practice_id: uuid.UUID) -> FunnelData:
    lines: dict[uuid.UUID, str] = {
        jid: line
        for jid, line in session.exec(
            select(Journey.id, Journey.revenue_line).where(Journey.practice_id == practice_id)
        ).all()
    }
    transitions = [
        Transition(
            journey=str(e.journey_id),
            line=lines.get(e.journey_id, ""),
            from_stage=e.from_stage,
            to_stage=e.to_stage,
            status=e.status,
            reason=e.reason,
            at=e.at,
            seq=_seq(e.key),
        )
        for e in session.exec(select(StageEvent).where(StageEvent.practice_id == practice_id))
    ]
    sent: dict[uuid.UUID, list[tuple[datetime, str | None, str, str]]] = defaultdict(list)
    message_rows = session.execute(
        sa.select(
            col(Message.journey_id),
            col(Message.sent_at),
            col(Message.stage),
            col(Message.kind),
            col(Message.template),
        )
        .where(col(Message.practice_id) == practice_id)
        .where(col(Message.direction) == Direction.OUTBOUND.value)
        .where(col(Message.status).in_(SENT))
        .where(col(Message.sent_at).is_not(None))
    ).all()
    for journey_id, sent_at, stage, kind, template in cast(list[MessageRow], message_rows):
        if journey_id is not None and sent_at is not None:
            sent[journey_id].append((sent_at, stage, kind, template))
    for items in sent.values():
        items.sort(key=lambda m: m[0])

    leads: list[Lead] = []
    first_inquiry: set[uuid.UUID] = set()
    rows = session.execute(
        sa.select(
            col(Inquiry.journey_id),
            col(Inquiry.patient_id),
            col(Inquiry.revenue_line),
            col(Inquiry.received_at),
            col(Patient.referred_by),
        )
        .join(Patient, col(Patient.id) == col(Inquiry.patient_id))
        .where(col(Inquiry.practice_id) == practice_id)
        .where(
            col(Inquiry.status).in_(
                (InquiryStatus.RECEIVED.value, InquiryStatus.JOURNEY_STARTED.value)
            )
        )
        .order_by(col(Inquiry.received_at))
    ).all()
    for journey_id, patient_id, line, received_at, referred_by in cast(list[InquiryRow], rows):
        answered = next((m[0] for m in sent.get(journey_id, []) if m[0] >= received_at), None)
        # A referral is obtained once per referred patient: at their first inquiry.
        referred = referred_by is not None and patient_id not in first_inquiry
        first_inquiry.add(patient_id)
        leads.append(Lead(line, received_at, answered, referred))

    treatments: list[Treatment] = []
    previous: dict[uuid.UUID, datetime] = {}
    events = session.exec(
        select(JourneyEventRow)
        .join(Journey, col(Journey.id) == col(JourneyEventRow.journey_id))
        .where(Journey.practice_id == practice_id)
        .where(JourneyEventRow.type == EventType.TREATMENT_COMPLETED.value)
        .where(JourneyEventRow.status != EventStatus.DROPPED.value)
    ).all()
    for ev in sorted(events, key=lambda e: _parse(e.payload.get("at"), e.received_at)):
        at = _parse(ev.payload.get("at"), ev.received_at)
        amount = ev.payload.get("amount")
        since = previous.get(ev.journey_id)
        window = [
            m for m in sent.get(ev.journey_id, []) if m[0] <= at and (since is None or m[0] > since)
        ]
        previous[ev.journey_id] = at
        treatments.append(
            Treatment(
                lines.get(ev.journey_id, ""),
                at,
                float(amount) if isinstance(amount, int | float) else 0.0,
                recovery_cause(window),
            )
        )

    asks = [
        Ask(
            lines.get(journey_id, ""), "review" if template.startswith("review") else "referral", at
        )
        for journey_id, items in sent.items()
        for at, _, _, template in items
        if template.startswith(("review_ask", "referral_ask"))
    ]
    posted = session.exec(
        select(JourneyEventRow)
        .join(Journey, col(Journey.id) == col(JourneyEventRow.journey_id))
        .where(Journey.practice_id == practice_id)
        .where(JourneyEventRow.type == EventType.REVIEW_POSTED.value)
        .where(JourneyEventRow.status != EventStatus.DROPPED.value)
    ).all()
    asks += [
        Ask(
            lines.get(ev.journey_id, ""),
            "review_posted",
            _parse(ev.payload.get("at"), ev.received_at),
        )
        for ev in posted
    ]
    return FunnelData(transitions, leads, treatments, asks, reviews_measured=True)
