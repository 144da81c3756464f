"""Journeys: read from the database (works while Temporal is down), and events posted to them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.audit import Action, add_audit, audit_now
from api.authz import Permission
from api.deps import EngineDep, Principal, SessionDep, SettingsDep, TemporalDep, require
from api.errors import not_found
from api.event_delivery import deliver, load_pending
from api.event_intake import accept_event
from api.schemas import (
    EventAccepted,
    EventCreate,
    JourneyDetail,
    JourneyOut,
    JourneyPage,
    StageHistoryItem,
)
from models.enums import JourneyStatus, RevenueLine, Stage
from models.tables import Journey, StageEvent

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])

Reader = Annotated[Principal, Depends(require(Permission.JOURNEY_READ))]
EventWriter = Annotated[Principal, Depends(require(Permission.JOURNEY_EVENT_CREATE))]


def journey_detail(session: Session, journey: Journey) -> JourneyDetail:
    history = session.exec(
        select(StageEvent)
        .where(StageEvent.journey_id == journey.id)
        .order_by(col(StageEvent.at), col(StageEvent.key))
    ).all()
    return JourneyDetail(
        **JourneyOut.model_validate(journey).model_dump(),
        stage_history=[StageHistoryItem.model_validate(e) for e in history],
    )


@router.get("", response_model=JourneyPage)
def list_journeys(
    principal: Reader,
    session: SessionDep,
    patient_id: uuid.UUID | None = None,
    stage: Stage | None = None,
    journey_status: Annotated[JourneyStatus | None, Query(alias="status")] = None,
    revenue_line: RevenueLine | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JourneyPage:
    query = select(Journey).where(Journey.practice_id == principal.practice_id)
    if patient_id is not None:
        query = query.where(Journey.patient_id == patient_id)
    if stage is not None:
        query = query.where(Journey.stage == stage.value)
    if journey_status is not None:
        query = query.where(Journey.status == journey_status.value)
    if revenue_line is not None:
        query = query.where(Journey.revenue_line == revenue_line.value)
    rows = session.exec(
        query.order_by(col(Journey.created_at), col(Journey.id)).offset(offset).limit(limit)
    ).all()
    # One row for the listing (resource: the patient filter, if any), not one per journey.
    audit_now(session, principal, Action.JOURNEY_LIST, "journey", patient_id)
    return JourneyPage(
        items=[JourneyOut.model_validate(j) for j in rows], limit=limit, offset=offset
    )


@router.get("/{journey_id}", response_model=JourneyDetail)
def get_journey(journey_id: uuid.UUID, principal: Reader, session: SessionDep) -> JourneyDetail:
    journey = session.get(Journey, journey_id)
    if journey is None or journey.practice_id != principal.practice_id:
        raise not_found("journey")
    detail = journey_detail(session, journey)
    audit_now(session, principal, Action.JOURNEY_READ, "journey", journey.id)
    return detail


@router.post(
    "/{journey_id}/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventAccepted,
    responses={
        404: {"description": "no such journey"},
        409: {"description": "journey ended, or event id reused with a different body"},
    },
)
async def post_event(
    journey_id: uuid.UUID,
    body: EventCreate,
    principal: EventWriter,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> EventAccepted:
    def audit(tx: Session, target: uuid.UUID) -> None:
        add_audit(tx, principal, Action.JOURNEY_EVENT_CREATE, "journey", target)

    assert principal.practice is not None
    result = await run_in_threadpool(
        accept_event, session, principal.practice, journey_id, body, audit
    )
    if result.duplicate:
        await run_in_threadpool(
            audit_now, session, principal, Action.JOURNEY_EVENT_CREATE, "journey", journey_id
        )
    client = temporal.client
    if not result.duplicate and client is not None:
        # Deliver this journey's pending events (oldest first), not just this one: order matters.
        pending = await run_in_threadpool(load_pending, engine, journey_ids=result.journey_ids)
        await deliver(client, settings, engine, pending)
    return EventAccepted(
        journey_id=journey_id,
        event_id=body.id,
        type=body.type,
        journey_ids=result.journey_ids,
        duplicate=result.duplicate,
    )
