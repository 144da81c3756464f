"""Patients: the message ledger, both directions, with each message's status."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.deps import PracticeDep, SessionDep
from api.errors import not_found
from api.schemas import MessageOut, MessagePage
from models.tables import Message, Patient

router = APIRouter(prefix="/v1/patients", tags=["patients"])


@router.get("/{patient_id}/messages", response_model=MessagePage)
def list_messages(
    patient_id: uuid.UUID,
    practice: PracticeDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> MessagePage:
    patient = session.get(Patient, patient_id)
    if patient is None or patient.practice_id != practice.id:
        raise not_found("patient")
    rows = session.exec(
        select(Message)
        .where(Message.patient_id == patient.id)
        .where(Message.practice_id == practice.id)
        .order_by(col(Message.created_at), col(Message.id))
        .offset(offset)
        .limit(limit)
    ).all()
    return MessagePage(
        patient_id=patient.id,
        items=[MessageOut.model_validate(m) for m in rows],
        limit=limit,
        offset=offset,
    )
