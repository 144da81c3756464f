"""The journey workflow: one patient's path through the eight stages on one revenue line.

Deterministic: time is `workflow.now()`, waits are `wait_condition` with a timeout (an updatable
timer: any event wakes the loop and the plan is recomputed), ids come from `workflow.uuid4()`.
No PHI passes through here: the send activity looks the patient up by id and renders there."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.journey_records import JourneyRecords
    from activities.library import LibraryActivities
    from activities.messaging import Messaging
    from models.clock import format_local
    from models.emr_types import AppointmentState, ConsultCheckInput
    from models.enums import EventType, InquiryChannel, Stage
    from models.journey_types import (
        JOURNEY_WORKFLOW_NAME,
        QUERY_STATE,
        SIGNAL_INQUIRY,
        InquirySignal,
        JourneyEvent,
        JourneyInput,
        JourneyMemory,
        JourneyResult,
        JourneyState,
        JourneySyncInput,
        JourneyWrites,
        ResolveTrackInput,
        SendInput,
        StaffTaskInput,
        TransitionInput,
    )
    from models.track_types import StepSpec
    from runtime.temporal_client import SA_JOURNEY_STAGE, SA_NEXT_ACTION_AT
    from workflows.library import REPLY, resolve_track
    from workflows.machine import JourneyMachine, Planned, journey_status
    from workflows.tracks import legacy_track_spec

ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
# The EMR may be down: a few tries, then the staff task two days on covers it.
CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5), maximum_attempts=5
)
SEEN_EVENT_IDS_KEPT = 500
HISTORY_KEPT = 30

# Journeys that started before the track library ran the frozen version-1 tracks; their
# histories replay with this patch absent (tests/workflows/histories).
PATCH_TRACK_LIBRARY = "track-library"


@workflow.defn(name=JOURNEY_WORKFLOW_NAME)
class JourneyWorkflow:
    @workflow.init
    def __init__(self, inp: JourneyInput) -> None:
        self._in = inp
        self._m: JourneyMemory = inp.memory or JourneyMemory()
        # Replaced in `run` once it knows which tracks this history runs (see `_tracks`).
        track = self._m.track or resolve_track(inp.revenue_line, self._m.interest)
        self._machine = JourneyMachine(self._m, track, inp.channels, self)
        self._inbox: list[JourneyEvent | InquirySignal] = [
            *self._m.pending_events,
            *self._m.pending_inquiries,
        ]
        self._m.pending_events = []
        self._m.pending_inquiries = []
        self._next: Planned | None = None
        self._writes = JourneyWrites(journey_id=inp.journey_id)
        self._history: list[str] = []

    # ---- signals and query -------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_INQUIRY)
    def inquiry(self, sig: InquirySignal) -> None:
        if self._remember(sig.id):
            self._inbox.append(sig)

    # One named signal per event type so the Temporal UI shows what happened.
    @workflow.signal(name=EventType.CONSULT_BOOKED.value)
    def consult_booked(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.APPOINTMENT_RESCHEDULED.value)
    def appointment_rescheduled(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.APPOINTMENT_CANCELLED.value)
    def appointment_cancelled(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.ARRIVED.value)
    def arrived(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.NO_SHOW.value)
    def no_show(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.TREATMENT_COMPLETED.value)
    def treatment_completed(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.PATIENT_REPLIED.value)
    def patient_replied(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.OPTED_OUT.value)
    def opted_out(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.OPTED_IN.value)
    def opted_in(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.STAFF_PAUSED.value)
    def staff_paused(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.STAFF_RESUMED.value)
    def staff_resumed(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.ERASE.value)
    def erase(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.signal(name=EventType.REVIEW_POSTED.value)
    def review_posted(self, ev: JourneyEvent) -> None:
        self._receive(ev)

    @workflow.query(name=QUERY_STATE)
    def state(self) -> JourneyState:
        return JourneyState(
            stage=self._m.stage,
            status=self._m.status,
            revenue_line=self._in.revenue_line,
            cycle=self._m.cycle,
            next_action=self._next.label if self._next else None,
            next_action_at=self._next.at if self._next else None,
            appointment_at=self._m.appointment_at,
            treatments=self._m.treatments,
            history=list(self._history),
        )

    def _remember(self, event_id: str) -> bool:
        """False for an event id already seen (duplicate webhook, retried relay)."""
        if event_id in self._m.seen_event_ids:
            return False
        self._m.seen_event_ids.append(event_id)
        del self._m.seen_event_ids[:-SEEN_EVENT_IDS_KEPT]
        return True

    def _receive(self, ev: JourneyEvent) -> None:
        if self._remember(ev.id):
            self._inbox.append(ev)

    # ---- main loop -----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: JourneyInput) -> JourneyResult:
        machine = self._machine
        first_run = not self._m.chain_id
        if not self._m.library and workflow.patched(PATCH_TRACK_LIBRARY):
            self._m.library = True
        if not self._m.library:
            machine.track = legacy_track_spec(inp.revenue_line)
        if first_run and inp.start is not None:
            # Bulk enrollment (new journeys only: no recorded history carries `start`).
            self._m.chain_id = str(workflow.uuid4())[:8]
            machine.enroll(inp.start, workflow.now())
        elif first_run:
            await self._begin()
        if self._m.library and self._m.track is None:
            await self._resolve_track()
        while not machine.ended:
            if self._inbox:
                item = self._inbox.pop(0)
                if isinstance(item, InquirySignal):
                    machine.repeat_inquiry(item)
                else:
                    machine.handle(item, workflow.now(), self._local(item.appointment_at))
                continue
            if machine.cycle_ended or workflow.info().is_continue_as_new_suggested():
                await self._flush()
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._inbox:
                    self._continue_as_new_now()
                continue
            planned = machine.plan(workflow.now())
            self._publish_next(planned)
            await self._flush()
            if self._inbox:
                continue  # arrived during the flush: handle it first, then plan again
            now = workflow.now()
            if planned.at > now:
                try:
                    await workflow.wait_condition(
                        lambda: bool(self._inbox),
                        timeout=planned.at - now,
                        timeout_summary=f"until {self._local(planned.at)} for {planned.label}",
                    )
                    continue  # an event arrived: handle it, then plan again
                except TimeoutError:
                    pass
            if planned.step is not None and planned.key is not None:
                await self._run_step(planned.step, planned.key, planned.at)
            elif planned.outcome is not None:
                machine.run_outcome(planned.outcome, workflow.now())
        self._publish_next(None)
        await self._flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        inquiries = [i for i in self._inbox if isinstance(i, InquirySignal)]
        if inquiries:
            # A new inquiry arrived while this journey was ending (its signal-with-start found
            # this run still open): it starts the journey afresh rather than being lost.
            self._next_run(JourneyMemory(pending_inquiries=inquiries))
        return JourneyResult(self._m.status, self._m.stage, self._m.exit_reason, self._m.cycle)

    async def _begin(self) -> None:
        """First run of a journey: the instant reply goes out before anything is recorded,
        because speed to lead is the product."""
        self._m.chain_id = str(workflow.uuid4())[:8]
        now = workflow.now()
        first = next((i for i in self._inbox if isinstance(i, InquirySignal)), None)
        if first is not None:
            self._inbox.remove(first)
            self._m.interest = first.service
        self._machine.begin(now)
        self._set_details("sending the first reply")
        # A patient enrolled from an EMR booking did not write to us: no "thanks for reaching
        # out" (and no consent to assume); the consult reminders speak to them instead.
        if first is not None and first.channel != InquiryChannel.EMR.value:
            await self._run_step(REPLY, self._machine.scoped(REPLY), now)
        else:
            self._m.done_steps.append(self._machine.scoped(REPLY))
        self._machine.record_start(first, now)

    async def _resolve_track(self) -> None:
        """The practice's track for this cycle, frozen into the journey's memory: edits the
        practice makes later apply from the next cycle."""
        service = self._m.cycle_service
        track = await workflow.execute_local_activity_method(
            LibraryActivities.resolve_track,
            ResolveTrackInput(self._in.practice_id, self._in.revenue_line, service),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            summary="resolve the practice's track for this cycle",
        )
        self._m.track = track
        self._machine.track = track
        self.note(f"track {track.id} version {track.version}")

    def _continue_as_new_now(self) -> None:
        self._machine.cycle_ended = False
        prefix = f"{self._m.visit}:"
        self._m.done_steps = [k for k in self._m.done_steps if k.startswith(prefix)]
        self._m.deferrals = {k: v for k, v in self._m.deferrals.items() if k.startswith(prefix)}
        self._m.pending_events = [e for e in self._inbox if isinstance(e, JourneyEvent)]
        self._m.pending_inquiries = [i for i in self._inbox if isinstance(i, InquirySignal)]
        self._next_run(self._m)

    def _next_run(self, memory: JourneyMemory) -> NoReturn:
        inp = self._in
        workflow.continue_as_new(
            JourneyInput(
                journey_id=inp.journey_id,
                practice_id=inp.practice_id,
                patient_id=inp.patient_id,
                revenue_line=inp.revenue_line,
                channels=inp.channels,
                timezone=inp.timezone,
                memory=memory,
            )
        )

    def _publish_next(self, planned: Planned | None) -> None:
        before = self._next
        self._next = planned
        if planned is not None:
            self._set_details(f"waiting until {self._local(planned.at)} for {planned.label}")
        else:
            self._set_details(f"ended: {self._m.status.value} ({self._m.exit_reason})")
        if before is None and planned is None:
            return
        if before and planned and (before.at, before.label) == (planned.at, planned.label):
            return
        workflow.upsert_search_attributes(
            [
                SA_NEXT_ACTION_AT.value_set(planned.at)
                if planned
                else SA_NEXT_ACTION_AT.value_unset()
            ]
        )
        self.sync()

    # ---- steps -------------------------------------------------------------------------------

    async def _run_step(self, step: StepSpec, key: str, due: datetime) -> None:
        machine = self._machine
        now = workflow.now()
        if not machine.ready(step, key, due, now):
            return
        if step.check is not None:
            await self._check(key)
            return
        assert step.template is not None
        # The reply to a fresh inquiry runs as a local activity: no round trip through the
        # server before the patient hears back (speed to lead). The ledger's idempotency key
        # makes the local activity's at-least-once execution safe.
        execute = (
            workflow.execute_local_activity_method
            if step.immediate_reply
            else workflow.execute_activity_method
        )
        result = await execute(
            Messaging.send,
            SendInput(
                idempotency_key=self._idempotency_key(key),
                journey_id=self._in.journey_id,
                template=step.template,
                kind=step.kind,
                at=now,
                stage=self._m.stage,
                appointment_at=self._m.appointment_at,
                immediate_reply=step.immediate_reply,
                expires_at=machine.expires_at(),
                service=self._m.cycle_service if self._m.library else None,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            summary=f"send {step.template} ({self._m.stage.value})",
        )
        machine.sent(step, key, result.status, result.retry_at, now, self._local(result.retry_at))

    async def _check(self, key: str) -> None:
        """Ask the EMR what became of the consult; its answer moves the journey like the event
        would have (the activity finds the EMR appointment from the journey id)."""
        state = await workflow.execute_activity(
            "emr_consult_outcome",
            ConsultCheckInput(self._in.journey_id),
            result_type=AppointmentState,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=CHECK_RETRY,
            summary="ask the EMR how the consult went",
        )
        status = state.status if state.found else None
        self._machine.checked(key, status, workflow.now(), self._local(self._m.appointment_at))

    # ---- the machine's listener: recording ---------------------------------------------------

    def transition(
        self, before: Stage | None, stage: Stage, reason: str, at: datetime, branch: bool
    ) -> None:
        self.note(f"{before.value if before else '-'} -> {stage.value}: {reason}", at)
        if not branch:
            workflow.upsert_search_attributes([SA_JOURNEY_STAGE.value_set(stage.value)])
        self._writes.transitions.append(
            TransitionInput(
                journey_id=self._in.journey_id,
                workflow_id=f"{workflow.info().workflow_id}/{self._m.chain_id}",
                seq=self._m.transitions,
                from_stage=before,
                to_stage=stage,
                status=journey_status(self._m),
                reason=reason,
                at=at,
                cycle=self._m.cycle,
                branch=branch,
            )
        )

    def sync(self) -> None:
        self._writes.sync = JourneySyncInput(
            journey_id=self._in.journey_id,
            status=journey_status(self._m),
            next_action=self._next.label if self._next else None,
            next_action_at=self._next.at if self._next else None,
            at=workflow.now(),
        )

    def staff_task(self, kind: str, key_suffix: str) -> None:
        self._writes.staff_tasks.append(
            StaffTaskInput(
                key=self._idempotency_key(key_suffix),
                journey_id=self._in.journey_id,
                kind=kind,
                at=workflow.now(),
            )
        )

    def note(self, text: str, at: datetime | None = None) -> None:
        when = self._local(at or workflow.now())
        self._history.append(f"{when} {text}")
        del self._history[:-HISTORY_KEPT]

    async def _flush(self) -> None:
        """Write what happened since the last flush — transitions, staff tasks, the journey
        row — in one local activity (one transaction, no server round trip of its own). Runs
        before every wait, so the database is current whenever the journey sleeps."""
        writes = self._writes
        if not (writes.transitions or writes.staff_tasks or writes.sync):
            return
        self._writes = JourneyWrites(journey_id=self._in.journey_id)
        parts = [f"stage {t.to_stage.value}: {t.reason}" for t in writes.transitions]
        parts += [f"staff task {t.kind}" for t in writes.staff_tasks]
        if writes.sync is not None:
            parts.append("next action")
        await workflow.execute_local_activity_method(
            JourneyRecords.write,
            writes,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            summary="record " + "; ".join(parts),
        )

    # ---- helpers -----------------------------------------------------------------------------

    def _idempotency_key(self, scoped: str) -> str:
        """Journey + chain + cycle + step: stable across activity retries and replays."""
        return f"{workflow.info().workflow_id}/{self._m.chain_id}/c{self._m.cycle}/{scoped}"

    def _local(self, at: datetime | None) -> str:
        return format_local(at, self._in.timezone) if at is not None else ""

    def _set_details(self, text: str) -> None:
        status = journey_status(self._m).value
        workflow.set_current_details(
            f"**{self._m.stage.value}** ({status}, cycle {self._m.cycle}): {text}"
        )
