"""Database writes for the journey: transitions (the funnel's source), staff tasks and the
journey row's live columns. One activity writes a batch in one transaction; every part is
idempotent (keyed rows are inserted once), so a retried or replayed batch changes nothing twice."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from models.enums import TERMINAL_STATUSES
from models.journey_types import (
    JourneySyncInput,
    JourneyWrites,
    JourneyWritesResult,
    StaffTaskInput,
    TransitionInput,
)
from models.tables import Journey, StaffTask, StageEvent


class JourneyRecords:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn
    def write(self, writes: JourneyWrites) -> JourneyWritesResult:
        try:
            return self._write(writes)
        except sa.exc.IntegrityError:
            # A concurrent attempt of the same batch inserted a keyed row first: run again,
            # and the rows already there are skipped.
            return self._write(writes)

    def _write(self, writes: JourneyWrites) -> JourneyWritesResult:
        with Session(self._engine) as session:
            journey = session.get(Journey, uuid.UUID(writes.journey_id))
            if journey is None:
                raise ApplicationError(
                    "journey row not found", type="JourneyNotFound", non_retryable=True
                )
            new = [t for t in writes.transitions if self._transition(session, journey, t)]
            recorded = len(new)
            created = sum(self._staff_task(session, journey, t) for t in writes.staff_tasks)
            if writes.sync is not None:
                self._sync(journey, writes.sync)
            session.add(journey)
            session.commit()
        # After the commit: a transition counts once, when it is recorded (a retry skips it).
        for t in new:
            metrics.record_transition(
                t.from_stage.value if t.from_stage else None, t.to_stage.value, t.status.value
            )
        return JourneyWritesResult(recorded, created)

    @staticmethod
    def _transition(session: Session, journey: Journey, t: TransitionInput) -> bool:
        key = f"{t.workflow_id}:{t.seq}"
        if session.exec(select(StageEvent.id).where(StageEvent.key == key)).first():
            return False
        session.add(
            StageEvent(
                key=key,
                journey_id=journey.id,
                practice_id=journey.practice_id,
                from_stage=t.from_stage.value if t.from_stage else None,
                to_stage=t.to_stage.value,
                status=t.status.value,
                reason=t.reason,
                cycle=t.cycle,
                at=t.at,
            )
        )
        if not t.branch:
            journey.stage = t.to_stage.value
        journey.status = t.status.value
        journey.cycle = t.cycle
        journey.updated_at = t.at
        if t.status in TERMINAL_STATUSES:
            journey.exit_reason = t.reason
            journey.next_action = None
            journey.next_action_at = None
        return True

    @staticmethod
    def _staff_task(session: Session, journey: Journey, t: StaffTaskInput) -> bool:
        if session.exec(select(StaffTask.id).where(StaffTask.key == t.key)).first():
            return False
        session.add(
            StaffTask(
                key=t.key,
                practice_id=journey.practice_id,
                journey_id=journey.id,
                kind=t.kind,
                created_at=t.at,
            )
        )
        return True

    @staticmethod
    def _sync(journey: Journey, s: JourneySyncInput) -> None:
        journey.status = s.status.value
        journey.next_action = s.next_action
        journey.next_action_at = s.next_action_at
        journey.updated_at = s.at
