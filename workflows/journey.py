"""The journey workflow: one patient's path through the eight stages on one revenue line.

Deterministic: time is `workflow.now()`, waits are `wait_condition` with a timeout (an updatable
timer: any event wakes the loop and the plan is recomputed), ids come from `workflow.uuid4()`.
No PHI passes through here: the send activity looks the patient up by id and renders there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.journey_records import JourneyRecords
    from activities.messaging import Messaging
    from models.clock import format_local
    from models.enums import (
        TERMINAL_STATUSES,
        Channel,
        EventType,
        JourneyStatus,
        MessageKind,
        MessageStatus,
        Stage,
    )
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
        SendInput,
        StaffTaskInput,
        TransitionInput,
    )
    from runtime.temporal_client import SA_JOURNEY_STAGE, SA_NEXT_ACTION_AT
    from workflows.tracks import IMMEDIATE_REPLY, Outcome, Step, Track, track_for

ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
SEEN_EVENT_IDS_KEPT = 500
HISTORY_KEPT = 30

# Which sequence of the track runs when a stage is entered by an outcome.
SEQUENCE_FOR_STAGE = {
    Stage.REACTIVATION: "reactivation",
    Stage.CONSULT_SHOW: "awaiting_outcome",
}
PRE_TREATMENT = (
    Stage.INQUIRY,
    Stage.SPEED_TO_LEAD,
    Stage.CONSULT_BOOKED,
    Stage.CONSULT_SHOW,
    Stage.TREATMENT,
    Stage.REACTIVATION,
)


@dataclass
class _Planned:
    at: datetime
    label: str
    step: Step | None = None
    key: str | None = None
    outcome: Outcome | None = None


@workflow.defn(name=JOURNEY_WORKFLOW_NAME)
class JourneyWorkflow:
    @workflow.init
    def __init__(self, inp: JourneyInput) -> None:
        self._in = inp
        self._m: JourneyMemory = inp.memory or JourneyMemory()
        self._track: Track = track_for(inp.revenue_line)
        # Events and inquiries in arrival order: an inquiry after an opt-out must be seen after
        # it. An inquiry that arrived as a previous run ended starts this one (see `run`).
        self._inbox: list[JourneyEvent | InquirySignal] = [
            *self._m.pending_events,
            *self._m.pending_inquiries,
        ]
        self._m.pending_events = []
        self._m.pending_inquiries = []
        self._next: _Planned | None = None
        self._writes = JourneyWrites(journey_id=inp.journey_id)
        self._history: list[str] = []
        self._continue_as_new = False

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
        if not self._m.chain_id:
            await self._begin()
        while self._m.status not in TERMINAL_STATUSES:
            if self._inbox:
                item = self._inbox.pop(0)
                if isinstance(item, InquirySignal):
                    self._repeat_inquiry(item)
                else:
                    self._handle(item)
                continue
            if self._continue_as_new or workflow.info().is_continue_as_new_suggested():
                await self._flush()
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._inbox:
                    self._continue_as_new_now()
                continue
            planned = self._plan()
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
                self._run_outcome(planned.outcome)
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
        self._m.stage = Stage.SPEED_TO_LEAD
        self._m.sequence = "new_lead"
        self._m.anchor = now
        self._m.stage_entered_at = now
        self._m.visit = 1
        self._set_details("sending the first reply")
        if first is not None:
            await self._run_step(IMMEDIATE_REPLY, self._scoped(IMMEDIATE_REPLY), now)
        else:
            self._m.done_steps.append(self._scoped(IMMEDIATE_REPLY))
        reason = f"inquiry via {first.channel}" if first else "enrolled"
        self._record(None, Stage.INQUIRY, reason, at=first.at if first else now)
        self._record(Stage.INQUIRY, Stage.SPEED_TO_LEAD, "journey started")
        self._staff_task("new_lead", key_suffix="new_lead")

    def _continue_as_new_now(self) -> None:
        self._continue_as_new = False
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

    # ---- planning ----------------------------------------------------------------------------

    def _series_state(self) -> str:
        total = self._track.series_sessions
        return "series_done" if total and self._m.treatments >= total else "series_open"

    def _steps(self) -> tuple[tuple[Step, ...], Outcome]:
        t, seq = self._track, self._m.sequence
        appointment_due = Outcome(timedelta(0), "consult time arrived", stage=Stage.CONSULT_SHOW)
        sequences: dict[str, tuple[tuple[Step, ...], Outcome]] = {
            "new_lead": (t.new_lead, t.new_lead_outcome),
            "cancel_recovery": (t.cancel_recovery, t.cancel_outcome),
            "consult_reminders": (t.consult_reminders, appointment_due),
            "awaiting_outcome": (t.awaiting_outcome, t.awaiting_outcome_outcome),
            "no_show_recovery": (t.no_show_recovery, t.no_show_outcome),
            "quote_follow_up": (t.quote_follow_up, t.quote_outcome),
            "reactivation": (t.reactivation, t.reactivation_outcome),
        }
        if seq == "post_treatment":
            state = self._series_state()
            outcome = next(o for o in t.post_treatment_outcomes if o.when in (None, state))
            return tuple(s for s in t.post_treatment if s.when in (None, state)), outcome
        return sequences[seq]

    def _scoped(self, step: Step) -> str:
        return f"{self._m.visit}:{self._m.sequence}:{step.key}"

    def _plan(self) -> _Planned:
        steps, outcome = self._steps()
        anchor = self._m.anchor or workflow.now()
        best = _Planned(anchor + outcome.after, outcome.reason, outcome=outcome)
        for step in steps:
            key = self._scoped(step)
            if key in self._m.done_steps:
                continue
            at = self._m.deferrals.get(key) or anchor + step.offset
            # Ties go to the step: a message due at the same moment as the outcome goes first.
            if at <= best.at and (best.step is None or at < best.at):
                best = _Planned(at, step.template or step.task or step.key, step=step, key=key)
        return best

    def _publish_next(self, planned: _Planned | None) -> None:
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
        self._sync()

    # ---- steps and outcomes -----------------------------------------------------------------

    async def _run_step(self, step: Step, key: str, due: datetime) -> None:
        now = workflow.now()
        if now > due + step.grace:
            self._done(key, f"skipped {step.key}: its moment passed")
            return
        paused = self._m.staff_paused or (
            self._m.reply_paused and step.kind is MessageKind.MARKETING
        )
        if paused:
            self._done(key, f"skipped {step.key}: journey paused")
            return
        if step.task:
            self._staff_task(step.task, key_suffix=key)
            self._done(key, f"staff task {step.task}")
            return
        assert step.template is not None
        expires = self._m.appointment_at if self._m.sequence == "consult_reminders" else None
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
                expires_at=expires,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            summary=f"send {step.template} ({self._m.stage.value})",
        )
        if result.status is MessageStatus.DEFERRED and result.retry_at is not None:
            if expires is None or result.retry_at < expires:
                self._m.deferrals[key] = result.retry_at
                self._note(f"deferred {step.template} to {self._local(result.retry_at)}")
                return
        self._m.deferrals.pop(key, None)
        self._done(key, f"{step.template}: {result.status.value}")
        if step.branch is not None and result.status is MessageStatus.SENT:
            self._record(self._m.stage, step.branch, f"{step.key} sent", branch=True)

    def _run_outcome(self, outcome: Outcome) -> None:
        if outcome.exit_status:
            self._exit(JourneyStatus(outcome.exit_status), outcome.reason)
            return
        assert outcome.stage is not None
        anchor = workflow.now()
        if outcome.stage is Stage.CONSULT_SHOW and self._m.appointment_at is not None:
            anchor = self._m.appointment_at
        self._enter(outcome.stage, SEQUENCE_FOR_STAGE[outcome.stage], anchor, outcome.reason)

    def _done(self, key: str, note: str) -> None:
        self._m.done_steps.append(key)
        self._note(note)

    # ---- events ------------------------------------------------------------------------------

    def _repeat_inquiry(self, sig: InquirySignal) -> None:
        # The patient asked again while the journey runs: staff were alerted at the first
        # inquiry; a second automated reply would be noise, so a person follows up.
        self._staff_task("repeat_inquiry", key_suffix=f"inquiry:{sig.id}")
        self._note(f"repeat inquiry via {sig.channel}")

    def _handle(self, ev: JourneyEvent) -> None:
        at = ev.at or workflow.now()
        stage = self._m.stage
        t = ev.type
        if t in (EventType.CONSULT_BOOKED, EventType.APPOINTMENT_RESCHEDULED):
            if ev.appointment_at is None:
                self._note(f"ignored {t.value}: no appointment time")
                return
            self._m.appointment_at = ev.appointment_at
            self._m.bookings += 1
            self._m.reply_paused = False
            if stage is Stage.CONSULT_BOOKED:
                # Same stage, new time: the reminders re-arm under fresh keys for the new time.
                self._m.anchor = ev.appointment_at
                self._m.visit += 1
                self._note(f"appointment moved to {self._local(ev.appointment_at)}")
                self._sync()
            else:
                reason = (
                    "consult booked" if t is EventType.CONSULT_BOOKED else "appointment rescheduled"
                )
                self._enter(Stage.CONSULT_BOOKED, "consult_reminders", ev.appointment_at, reason)
        elif t is EventType.APPOINTMENT_CANCELLED:
            if stage in (Stage.CONSULT_BOOKED, Stage.CONSULT_SHOW):
                self._m.appointment_at = None
                self._enter(Stage.SPEED_TO_LEAD, "cancel_recovery", at, "appointment cancelled")
            else:
                self._note("cancellation ignored: no appointment")
        elif t is EventType.ARRIVED:
            if stage in PRE_TREATMENT:
                if stage is not Stage.CONSULT_SHOW:
                    self._enter(Stage.CONSULT_SHOW, "awaiting_outcome", at, "patient arrived")
                self._enter(Stage.TREATMENT, "quote_follow_up", at, "consult attended")
            else:
                self._note("arrival noted")
        elif t is EventType.NO_SHOW:
            if stage in (Stage.CONSULT_BOOKED, Stage.CONSULT_SHOW):
                self._enter(Stage.CONSULT_SHOW, "no_show_recovery", at, "no-show")
            else:
                self._note("no-show ignored: no appointment")
        elif t is EventType.TREATMENT_COMPLETED:
            self._treated(ev, at)
        elif t is EventType.PATIENT_REPLIED:
            self._m.reply_paused = True
            self._staff_task("patient_replied", key_suffix=f"reply:{ev.id}")
            self._note("patient replied: automated nurture paused")
            self._sync()
        elif t is EventType.OPTED_OUT:
            channels = [ev.channel] if ev.channel else list(Channel)
            for ch in channels:
                if ch not in self._m.suppressed_channels:
                    self._m.suppressed_channels.append(ch)
            if all(ch in self._m.suppressed_channels for ch in self._in.channels):
                self._exit(JourneyStatus.OPTED_OUT, "patient opted out")
            else:
                self._note(f"opted out of {', '.join(c.value for c in channels)}")
        elif t is EventType.OPTED_IN:
            channels = [ev.channel] if ev.channel else list(Channel)
            self._m.suppressed_channels = [
                c for c in self._m.suppressed_channels if c not in channels
            ]
            self._note(f"opted in to {', '.join(c.value for c in channels)}")
        elif t is EventType.STAFF_PAUSED:
            self._m.staff_paused = True
            self._note("paused by staff")
            self._sync()
        elif t is EventType.STAFF_RESUMED:
            self._m.staff_paused = False
            self._m.reply_paused = False
            self._note("resumed by staff")
            self._sync()
        elif t is EventType.ERASE:
            self._exit(JourneyStatus.ERASED, "erasure requested")

    def _treated(self, ev: JourneyEvent, at: datetime) -> None:
        total = self._track.series_sessions
        # A treatment after a finished series starts a new series (maintenance, next package).
        self._m.treatments = 1 if total and self._m.treatments >= total else self._m.treatments + 1
        self._m.last_treatment_at = at
        self._m.last_service = ev.service
        self._m.appointment_at = None
        self._m.cycle += 1
        self._m.reply_paused = False
        self._enter(Stage.REBOOK, "post_treatment", at, "treatment completed")
        # Each treatment starts a cycle, and each cycle is a fresh run: short histories forever.
        self._continue_as_new = True

    # ---- recording ---------------------------------------------------------------------------

    def _enter(self, stage: Stage, sequence: str, anchor: datetime, reason: str) -> None:
        before = self._m.stage
        self._m.stage = stage
        self._m.sequence = sequence
        self._m.anchor = anchor
        self._m.visit += 1
        self._m.stage_entered_at = workflow.now()
        self._record(before, stage, reason)

    def _exit(self, status: JourneyStatus, reason: str) -> None:
        self._m.status = status
        self._m.exit_reason = reason
        self._record(self._m.stage, self._m.stage, reason)

    def _record(
        self,
        before: Stage | None,
        stage: Stage,
        reason: str,
        *,
        at: datetime | None = None,
        branch: bool = False,
    ) -> None:
        self._m.transitions += 1
        when = at or workflow.now()
        self._note(f"{before.value if before else '-'} -> {stage.value}: {reason}", when)
        if not branch:
            workflow.upsert_search_attributes([SA_JOURNEY_STAGE.value_set(stage.value)])
        self._writes.transitions.append(
            TransitionInput(
                journey_id=self._in.journey_id,
                workflow_id=f"{workflow.info().workflow_id}/{self._m.chain_id}",
                seq=self._m.transitions,
                from_stage=before,
                to_stage=stage,
                status=self._status(),
                reason=reason,
                at=when,
                cycle=self._m.cycle,
                branch=branch,
            )
        )

    def _sync(self) -> None:
        self._writes.sync = JourneySyncInput(
            journey_id=self._in.journey_id,
            status=self._status(),
            next_action=self._next.label if self._next else None,
            next_action_at=self._next.at if self._next else None,
            at=workflow.now(),
        )

    def _staff_task(self, kind: str, *, key_suffix: str) -> None:
        self._writes.staff_tasks.append(
            StaffTaskInput(
                key=self._idempotency_key(key_suffix),
                journey_id=self._in.journey_id,
                kind=kind,
                at=workflow.now(),
            )
        )

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

    def _status(self) -> JourneyStatus:
        if self._m.status in TERMINAL_STATUSES:
            return self._m.status
        if self._m.staff_paused or self._m.reply_paused:
            return JourneyStatus.PAUSED
        return JourneyStatus.ACTIVE

    def _idempotency_key(self, scoped: str) -> str:
        """Journey + chain + cycle + step: stable across activity retries and replays."""
        return f"{workflow.info().workflow_id}/{self._m.chain_id}/c{self._m.cycle}/{scoped}"

    def _local(self, at: datetime) -> str:
        return format_local(at, self._in.timezone)

    def _note(self, text: str, at: datetime | None = None) -> None:
        when = self._local(at or workflow.now())
        self._history.append(f"{when} {text}")
        del self._history[:-HISTORY_KEPT]

    def _set_details(self, text: str) -> None:
        workflow.set_current_details(
            f"**{self._m.stage.value}** ({self._status().value}, cycle {self._m.cycle}): {text}"
        )
