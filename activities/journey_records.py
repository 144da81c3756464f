"""Database writes for the journey: transitions (the funnel's source), the journey row's live
columns, staff tasks. Each is idempotent: a retried activity changes nothing twice."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.journey_types import (
    JourneySyncInput,
    JourneySyncResult,
    StaffTaskInput,
    StaffTaskResult,
    TransitionInput,
    TransitionResult,
)
from models.tables import Journey, StaffTask, StageEvent


def _journey(session: Session, journey_id: str) -> Journey:
    journey = session.get(Journey, uuid.UUID(journey_id))
    if journey is None:
        raise ApplicationError("journey row not found", type="JourneyNotFound", non_retryable=True)
    return journey


class JourneyRecords:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn
    def record_transition(self, inp: TransitionInput) -> TransitionResult:
        key = f"{inp.workflow_id}:{inp.seq}"
        with Session(self._engine) as session:
            if session.exec(select(StageEvent.id).where(StageEvent.key == key)).first():
                return TransitionResult(recorded=False)
            journey = _journey(session, inp.journey_id)
            session.add(
                StageEvent(
                    key=key,
                    journey_id=journey.id,
                    practice_id=journey.practice_id,
                    from_stage=inp.from_stage.value if inp.from_stage else None,
                    to_stage=inp.to_stage.value,
                    status=inp.status.value,
                    reason=inp.reason,
                    cycle=inp.cycle,
                    at=inp.at,
                )
            )
            if not inp.branch:
                journey.stage = inp.to_stage.value
            journey.status = inp.status.value
            journey.cycle = inp.cycle
            journey.updated_at = inp.at
            if inp.status.value in ("opted_out", "closed_won", "closed_lost", "erased"):
                journey.exit_reason = inp.reason
                journey.next_action = None
                journey.next_action_at = None
            try:
                session.commit()
            except sa.exc.IntegrityError:  # a concurrent retry recorded it first
                session.rollback()
                return TransitionResult(recorded=False)
        return TransitionResult(recorded=True)

    @activity.defn
    def sync_journey(self, inp: JourneySyncInput) -> JourneySyncResult:
        with Session(self._engine) as session:
            journey = _journey(session, inp.journey_id)
            journey.status = inp.status.value
            journey.next_action = inp.next_action
            journey.next_action_at = inp.next_action_at
            journey.updated_at = inp.at
            session.commit()
        return JourneySyncResult(updated=True)

    @activity.defn
    def raise_staff_task(self, inp: StaffTaskInput) -> StaffTaskResult:
        with Session(self._engine) as session:
            if session.exec(select(StaffTask.id).where(StaffTask.key == inp.key)).first():
                return StaffTaskResult(created=False)
            journey = _journey(session, inp.journey_id)
            session.add(
                StaffTask(
                    key=inp.key,
                    practice_id=journey.practice_id,
                    journey_id=journey.id,
                    kind=inp.kind,
                    created_at=inp.at,
                )
            )
            try:
                session.commit()
            except sa.exc.IntegrityError:
                session.rollback()
                return StaffTaskResult(created=False)
        return StaffTaskResult(created=True)
