"""Journeys: read from the database (works while Temporal is down), and events posted to them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, PracticeDep, SessionDep, SettingsDep, TemporalDep
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


@router.get("", response_model=JourneyPage)
def list_journeys(
    practice: PracticeDep,
    session: SessionDep,
    patient_id: uuid.UUID | None = None,
    stage: Stage | None = None,
    journey_status: Annotated[JourneyStatus | None, Query(alias="status")] = None,
    revenue_line: RevenueLine | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JourneyPage:
    query = select(Journey).where(Journey.practice_id == practice.id)
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
    return JourneyPage(
        items=[JourneyOut.model_validate(j) for j in rows], limit=limit, offset=offset
    )


@router.get("/{journey_id}", response_model=JourneyDetail)
def get_journey(journey_id: uuid.UUID, practice: PracticeDep, session: SessionDep) -> JourneyDetail:
    journey = session.get(Journey, journey_id)
    if journey is None or journey.practice_id != practice.id:
        raise not_found("journey")
    history = session.exec(
        select(StageEvent)
        .where(StageEvent.journey_id == journey.id)
        .order_by(col(StageEvent.at), col(StageEvent.key))
    ).all()
    return JourneyDetail(
        **JourneyOut.model_validate(journey).model_dump(),
        stage_history=[StageHistoryItem.model_validate(e) for e in history],
    )


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
    practice: PracticeDep,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> EventAccepted:
    result = await run_in_threadpool(accept_event, session, practice, journey_id, body)
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
