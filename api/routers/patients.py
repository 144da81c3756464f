"""Patients: the message ledger (both directions, with status), and the patient's rights:
export everything, and erasure (api/erasure.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from activities.messaging import DirectSend, Messaging
from activities.providers import ProviderError
from api.audit import Action, add_audit, audit_now
from api.authz import Permission
from api.deps import EngineDep, Principal, SessionDep, SettingsDep, TemporalDep, require
from api.erasure import erase_patient, export_patient, patient_of
from api.event_delivery import deliver, load_pending
from api.routers.journeys import journey_detail
from api.schemas import (
    Conversation,
    ConversationItem,
    ErasureResult,
    MessageOut,
    MessagePage,
    PatientExport,
    StaffMessageCreate,
    StaffMessageResult,
)
from models.enums import Channel, Direction, MessageKind
from models.tables import Inquiry, Message, utcnow

router = APIRouter(prefix="/v1/patients", tags=["patients"])

MessageReader = Annotated[Principal, Depends(require(Permission.PATIENT_MESSAGES_READ))]
Exporter = Annotated[Principal, Depends(require(Permission.PATIENT_EXPORT))]
Eraser = Annotated[Principal, Depends(require(Permission.PATIENT_ERASE))]
Sender = Annotated[Principal, Depends(require(Permission.PATIENT_MESSAGE_SEND))]

# A staff reply within this long of the patient's own message answers it, like the reply to an
# inquiry: exempt from the send window. Later, it is a new message and waits for the window.
CONVERSATION_WINDOW = timedelta(hours=24)


@router.get("/{patient_id}/messages", response_model=MessagePage)
def list_messages(
    patient_id: uuid.UUID,
    principal: MessageReader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> MessagePage:
    patient = patient_of(session, principal.practice_id, patient_id)
    rows = session.exec(
        select(Message)
        .where(Message.patient_id == patient.id)
        .where(Message.practice_id == principal.practice_id)
        .order_by(col(Message.created_at), col(Message.id))
        .offset(offset)
        .limit(limit)
    ).all()
    audit_now(session, principal, Action.PATIENT_MESSAGES_READ, "patient", patient.id)
    return MessagePage(
        patient_id=patient.id,
        items=[MessageOut.model_validate(m) for m in rows],
        limit=limit,
        offset=offset,
    )


@router.get("/{patient_id}/conversation", response_model=Conversation)
def conversation(
    patient_id: uuid.UUID,
    principal: MessageReader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Conversation:
    """Every channel in one thread, oldest first: texts and emails both ways, and what the
    patient wrote in forms and the web chat (their inquiries)."""
    patient = patient_of(session, principal.practice_id, patient_id)
    items = [
        ConversationItem(
            at=m.sent_at or m.created_at,
            direction=m.direction,
            channel=m.channel,
            source="message",
            id=m.id,
            journey_id=m.journey_id,
            template=None if m.direction == Direction.INBOUND.value else m.template,
            status=m.status,
            body=m.body,
        )
        for m in session.exec(select(Message).where(Message.patient_id == patient.id)).all()
        # A message that never left (deferred, suppressed, skipped) is not part of the talk.
        if m.direction == Direction.INBOUND.value or m.sent_at is not None
    ]
    # An inquiry born of a text is already in the thread as that text.
    items += [
        ConversationItem(
            at=i.received_at,
            direction=Direction.INBOUND.value,
            channel=i.channel,
            source="inquiry",
            id=i.id,
            journey_id=i.journey_id,
            template=None,
            status=i.status,
            body=i.message,
        )
        for i in session.exec(select(Inquiry).where(Inquiry.patient_id == patient.id)).all()
        if not (i.external_id or "").startswith("twilio:")
    ]
    items.sort(key=lambda item: (item.at, str(item.id)))
    audit_now(session, principal, Action.PATIENT_CONVERSATION_READ, "patient", patient.id)
    return Conversation(
        patient_id=patient.id, items=items[offset : offset + limit], limit=limit, offset=offset
    )


@router.post(
    "/{patient_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StaffMessageResult,
)
async def send_message(
    patient_id: uuid.UUID,
    body: StaffMessageCreate,
    principal: Sender,
    session: SessionDep,
    request: Request,
) -> StaffMessageResult:
    """A staff reply, through the same send gate as every journey message: consent and
    suppression, the send window (unless it answers the patient's own message of the last 24
    hours), the ledger before the provider. Repeat with the same `id` and nothing is sent
    twice. Outside the window it is `deferred` (with `retry_at`) and keeps its place: the API
    sends it when the window opens."""
    messaging: Messaging = request.app.state.messaging

    def prepare() -> DirectSend:
        patient = patient_of(session, principal.practice_id, patient_id)
        last_inbound = session.exec(
            select(Message)
            .where(Message.patient_id == patient.id)
            .where(Message.direction == Direction.INBOUND.value)
            .order_by(col(Message.created_at).desc())
        ).first()
        now = utcnow()
        channel = body.channel
        if channel is None:
            last = last_inbound.channel if last_inbound is not None else None
            channel = Channel.EMAIL if last == Channel.EMAIL.value else Channel.SMS
        answering = last_inbound is not None and now - last_inbound.created_at < CONVERSATION_WINDOW
        key = f"staff:{patient.id}:{body.id or uuid.uuid4()}"
        add_audit(session, principal, Action.PATIENT_MESSAGE_SEND, "patient", patient.id)
        session.commit()
        return DirectSend(
            key,
            patient.id,
            MessageKind.CARE,
            now,
            body=body.body,
            channel=channel,
            respond=answering,
        )

    direct = await run_in_threadpool(prepare)
    try:
        result = await run_in_threadpool(messaging.send_direct, direct)
    except ProviderError as err:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"provider unavailable ({err.code}); repeat with the same id to retry",
        ) from None
    return StaffMessageResult(
        message_id=uuid.UUID(result.message_id) if result.message_id else None,
        status=result.status.value,
        channel=result.channel.value if result.channel else None,
        reason=result.reason,
        retry_at=result.retry_at,
    )


@router.get("/{patient_id}/export", response_model=PatientExport)
def export(patient_id: uuid.UUID, principal: Exporter, session: SessionDep) -> PatientExport:
    patient = patient_of(session, principal.practice_id, patient_id)
    result = export_patient(session, patient, journey_detail)
    audit_now(session, principal, Action.PATIENT_EXPORT, "patient", patient.id)
    return result


@router.post(
    "/{patient_id}/erase", status_code=status.HTTP_202_ACCEPTED, response_model=ErasureResult
)
async def erase(
    patient_id: uuid.UUID,
    principal: Eraser,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> ErasureResult:
    def commit_erasure() -> ErasureResult:
        patient = patient_of(session, principal.practice_id, patient_id)
        # The send gate locks the patient row while it writes a message body: holding the same
        # lock, the scrub below cannot miss a body written concurrently.
        session.refresh(patient, with_for_update=True)
        journey_ids = erase_patient(session, patient)
        add_audit(session, principal, Action.PATIENT_ERASE, "patient", patient.id)
        session.commit()
        assert patient.erased_at is not None
        return ErasureResult(
            patient_id=patient.id, erased_at=patient.erased_at, journey_ids=journey_ids
        )

    result = await run_in_threadpool(commit_erasure)
    client = temporal.client
    if client is not None and result.journey_ids:
        # Committed first; what Temporal does not take now, the relay delivers later.
        pending = await run_in_threadpool(load_pending, engine, journey_ids=result.journey_ids)
        await deliver(client, settings, engine, pending)
    return result
