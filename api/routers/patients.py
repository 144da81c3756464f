"""Patients: the message ledger (both directions, with status), and the patient's rights:
export everything, and erasure (api/erasure.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from api.audit import Action, add_audit, audit_now
from api.authz import Permission
from api.deps import EngineDep, Principal, SessionDep, SettingsDep, TemporalDep, require
from api.erasure import erase_patient, export_patient, patient_of
from api.event_delivery import deliver, load_pending
from api.routers.journeys import journey_detail
from api.schemas import ErasureResult, MessageOut, MessagePage, PatientExport
from models.tables import Message

router = APIRouter(prefix="/v1/patients", tags=["patients"])

MessageReader = Annotated[Principal, Depends(require(Permission.PATIENT_MESSAGES_READ))]
Exporter = Annotated[Principal, Depends(require(Permission.PATIENT_EXPORT))]
Eraser = Annotated[Principal, Depends(require(Permission.PATIENT_ERASE))]


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
