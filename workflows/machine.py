"""The journey's state machine and its planning, with no Temporal in it.

The workflow (workflows/journey.py) drives it with real time and real activities; the preview
(workflows/preview.py) drives it with a scenario and a simulated send gate. Both therefore plan
with the same code: what staff preview is what the journey does.

Everything here is deterministic: the caller passes `now`; what must be recorded (stage changes,
staff tasks, notes) goes to a `Listener`, in order, as it happens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from models.enums import (
    TERMINAL_STATUSES,
    Channel,
    EventType,
    JourneyStatus,
    MessageKind,
    MessageStatus,
    Stage,
)
from models.journey_types import InquirySignal, JourneyEvent, JourneyMemory, JourneyStart
from models.track_types import OutcomeSpec, SequenceSpec, StepSpec, TrackSpec

# What an EMR's answer about a passed consult means (integrations.model.ApptStatus values).
CHECKED_EVENTS = {
    "arrived": EventType.ARRIVED,
    "completed": EventType.ARRIVED,
    "no_show": EventType.NO_SHOW,
    "cancelled": EventType.APPOINTMENT_CANCELLED,
}
# The review and referral asks go to every patient (no review gating), once a year at most.
ASKED_AT_MOST_YEARLY = ("review_ask", "referral_ask")
ASK_INTERVAL = timedelta(days=365)
PRE_TREATMENT = (
    Stage.INQUIRY,
    Stage.SPEED_TO_LEAD,
    Stage.CONSULT_BOOKED,
    Stage.CONSULT_SHOW,
    Stage.TREATMENT,
    Stage.REACTIVATION,
)


class Listener(Protocol):
    def transition(
        self, before: Stage | None, stage: Stage, reason: str, at: datetime, branch: bool
    ) -> None: ...

    def staff_task(self, kind: str, key_suffix: str) -> None: ...

    def note(self, text: str, at: datetime | None = None) -> None: ...

    def sync(self) -> None: ...


@dataclass
class Planned:
    """The next thing the journey does: a step at `at`, or its sequence's outcome."""

    at: datetime
    label: str
    step: StepSpec | None = None
    key: str | None = None
    outcome: OutcomeSpec | None = None


def journey_status(m: JourneyMemory) -> JourneyStatus:
    if m.status in TERMINAL_STATUSES:
        return m.status
    if m.staff_paused or m.reply_paused:
        return JourneyStatus.PAUSED
    return JourneyStatus.ACTIVE


class JourneyMachine:
    def __init__(
        self,
        memory: JourneyMemory,
        track: TrackSpec,
        channels: list[Channel],
        listener: Listener,
    ) -> None:
        self.m = memory
        self.track = track
        self._channels = channels
        self._out = listener
        # Set when a treatment starts a new cycle: the driver continues as new, and a library
        # journey resolves its track afresh for the service just treated.
        self.cycle_ended = False

    # ---- status ------------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.m.status in TERMINAL_STATUSES

    def status(self) -> JourneyStatus:
        return journey_status(self.m)

    # ---- the start ---------------------------------------------------------------------------

    def begin(self, now: datetime) -> None:
        """The first run's state, before the instant reply goes out."""
        self.m.stage = Stage.SPEED_TO_LEAD
        self.m.sequence = "new_lead"
        self.m.anchor = now
        self.m.stage_entered_at = now
        self.m.visit = 1

    def enroll(self, start: JourneyStart, now: datetime) -> None:
        """The first run of a bulk-enrolled journey: no inquiry, no instant reply; the journey
        enters `start.stage` with its sequence counting from `start.anchor` (steps whose moment
        has passed are skipped as usual, so a late recall goes straight to the next one)."""
        self.m.interest = start.service
        if start.stage is Stage.REBOOK:
            self.m.last_service = start.service
            self.m.last_treatment_at = start.anchor
            self.m.treatments = 1
        self.m.stage = start.stage
        self.m.sequence = start.sequence
        self.m.anchor = start.anchor
        self.m.stage_entered_at = now
        self.m.visit = 1
        self._record(None, start.stage, start.reason, now)

    def reply_step(self) -> StepSpec | None:
        return next((s for s in self.track.sequences["new_lead"].steps if s.immediate_reply), None)

    def record_start(self, first: InquirySignal | None, now: datetime) -> None:
        reason = f"inquiry via {first.channel}" if first else "enrolled"
        self._record(None, Stage.INQUIRY, reason, now, at=first.at if first else now)
        self._record(Stage.INQUIRY, Stage.SPEED_TO_LEAD, "journey started", now)
        self._out.staff_task("new_lead", "new_lead")

    # ---- planning ----------------------------------------------------------------------------

    def series_state(self) -> str:
        total = self.track.series_sessions
        return "series_done" if total and self.m.treatments >= total else "series_open"

    def _sequence(self, purpose: str) -> SequenceSpec:
        # A version-1 journey knows one "reactivation"; the library splits it by cause.
        seqs = self.track.sequences
        if purpose in seqs:
            return seqs[purpose]
        if purpose == "reactivation":
            return seqs["reactivation_cold_lead"]
        return seqs["reactivation"]

    def steps(self) -> tuple[list[StepSpec], OutcomeSpec]:
        seq = self._sequence(self.m.sequence)
        if self.m.sequence != "post_treatment":
            return seq.steps, seq.outcomes[0]
        state = self.series_state()
        extra = self.track.sequences.get("review_referral")
        candidates = [*seq.steps, *(extra.steps if extra else [])]
        outcome = next(o for o in seq.outcomes if o.when in (None, state))
        return [s for s in candidates if s.when in (None, state)], outcome

    def scoped(self, step: StepSpec) -> str:
        return f"{self.m.visit}:{self.m.sequence}:{step.key}"

    def plan(self, now: datetime) -> Planned:
        steps, outcome = self.steps()
        anchor = self.m.anchor or now
        best = Planned(anchor + outcome.after, outcome.reason, outcome=outcome)
        for step in steps:
            key = self.scoped(step)
            if key in self.m.done_steps:
                continue
            at = self.m.deferrals.get(key) or anchor + step.offset
            # Ties go to the step: a message due at the same moment as the outcome goes first.
            if at <= best.at and (best.step is None or at < best.at):
                best = Planned(at, step.template or step.task or step.key, step=step, key=key)
        return best

    # ---- steps -------------------------------------------------------------------------------

    def ready(self, step: StepSpec, key: str, due: datetime, now: datetime) -> bool:
        """True when the step's message should go to the gate now. Otherwise the step is
        settled here: skipped (too late, paused) or a staff task raised."""
        if now > due + step.grace:
            self.done(key, f"skipped {step.key}: its moment passed")
            return False
        paused = self.m.staff_paused or (self.m.reply_paused and step.kind is MessageKind.MARKETING)
        if paused:
            self.done(key, f"skipped {step.key}: journey paused")
            return False
        if self.m.library and step.key in ASKED_AT_MOST_YEARLY:
            last = self.m.asked.get(step.key)
            if last is not None and now - last < ASK_INTERVAL:
                # A recurring patient (tox every 90 days) is asked once a year, not each visit.
                self.done(key, f"skipped {step.key}: asked within the year")
                return False
        if step.task:
            self._out.staff_task(step.task, key)
            self.done(key, f"staff task {step.task}")
            return False
        return True

    def checked(self, key: str, status: str | None, now: datetime, local: str) -> None:
        """What the EMR says of the consult (a `check` step): an answer moves the journey as
        the event would have; no answer (no EMR, not found, still booked) leaves it waiting."""
        self.done(key, f"EMR says the consult is {status or 'unknown'}")
        event = CHECKED_EVENTS.get(status or "")
        if event is not None and self.m.stage is Stage.CONSULT_SHOW:
            at = self.m.appointment_at if event is EventType.ARRIVED else now
            self.handle(JourneyEvent(event, f"check:{key}", at=at or now), now, local)

    def expires_at(self) -> datetime | None:
        """A consult reminder is pointless once the appointment has begun."""
        return self.m.appointment_at if self.m.sequence == "consult_reminders" else None

    def sent(
        self,
        step: StepSpec,
        key: str,
        status: MessageStatus,
        retry_at: datetime | None,
        now: datetime,
        local: str,
    ) -> None:
        """The gate's answer for a step's message. A deferral keeps the step in its place."""
        expires = self.expires_at()
        if status is MessageStatus.DEFERRED and retry_at is not None:
            if expires is None or retry_at < expires:
                self.m.deferrals[key] = retry_at
                self._out.note(f"deferred {step.template} to {local}")
                return
        self.m.deferrals.pop(key, None)
        self.done(key, f"{step.template}: {status.value}")
        if self.m.library and step.key in ASKED_AT_MOST_YEARLY and status is MessageStatus.SENT:
            self.m.asked[step.key] = now
        if step.branch is not None and status is MessageStatus.SENT:
            self._record(self.m.stage, step.branch, f"{step.key} sent", now, branch=True)

    def done(self, key: str, note: str) -> None:
        self.m.done_steps.append(key)
        self._out.note(note)

    def run_outcome(self, outcome: OutcomeSpec, now: datetime) -> None:
        if outcome.exit_status:
            self.exit(JourneyStatus(outcome.exit_status), outcome.reason, now)
            return
        assert outcome.stage is not None and outcome.sequence is not None
        anchor = now
        if outcome.stage is Stage.CONSULT_SHOW and self.m.appointment_at is not None:
            anchor = self.m.appointment_at
        self.enter(outcome.stage, outcome.sequence, anchor, outcome.reason, now)

    # ---- events ------------------------------------------------------------------------------

    def repeat_inquiry(self, sig: InquirySignal) -> None:
        # The patient asked again while the journey runs: staff were alerted at the first
        # inquiry; a second automated reply would be noise, so a person follows up.
        self._out.staff_task("repeat_inquiry", f"inquiry:{sig.id}")
        self._out.note(f"repeat inquiry via {sig.channel}")

    def handle(self, ev: JourneyEvent, now: datetime, local: str) -> None:
        """`local` renders an appointment time for notes (the driver knows the zone)."""
        at = ev.at or now
        stage = self.m.stage
        t = ev.type
        if t in (EventType.CONSULT_BOOKED, EventType.APPOINTMENT_RESCHEDULED):
            if ev.appointment_at is None:
                self._out.note(f"ignored {t.value}: no appointment time")
                return
            self.m.appointment_at = ev.appointment_at
            self.m.bookings += 1
            self.m.reply_paused = False
            if stage is Stage.CONSULT_BOOKED:
                # Same stage, new time: the reminders re-arm under fresh keys for the new time.
                self.m.anchor = ev.appointment_at
                self.m.visit += 1
                self._out.note(f"appointment moved to {local}")
                self._out.sync()
            else:
                reason = (
                    "consult booked" if t is EventType.CONSULT_BOOKED else "appointment rescheduled"
                )
                self.enter(
                    Stage.CONSULT_BOOKED, "consult_reminders", ev.appointment_at, reason, now
                )
        elif t is EventType.APPOINTMENT_CANCELLED:
            if stage in (Stage.CONSULT_BOOKED, Stage.CONSULT_SHOW):
                self.m.appointment_at = None
                self.enter(Stage.SPEED_TO_LEAD, "cancel_recovery", at, "appointment cancelled", now)
            else:
                self._out.note("cancellation ignored: no appointment")
        elif t is EventType.ARRIVED:
            if stage in PRE_TREATMENT:
                if stage is not Stage.CONSULT_SHOW:
                    self.enter(Stage.CONSULT_SHOW, "awaiting_outcome", at, "patient arrived", now)
                self.enter(Stage.TREATMENT, "quote_follow_up", at, "consult attended", now)
            else:
                self._out.note("arrival noted")
        elif t is EventType.NO_SHOW:
            if stage in (Stage.CONSULT_BOOKED, Stage.CONSULT_SHOW):
                self.enter(Stage.CONSULT_SHOW, "no_show_recovery", at, "no-show", now)
            else:
                self._out.note("no-show ignored: no appointment")
        elif t is EventType.TREATMENT_COMPLETED:
            self._treated(ev, at, now)
        elif t is EventType.PATIENT_REPLIED:
            self.m.reply_paused = True
            # After surgery a reply may be a worry: staff see it as such, not as a sales lead.
            kind = "post_op_reply" if self._post_op() else "patient_replied"
            self._out.staff_task(kind, f"reply:{ev.id}")
            self._out.note("patient replied: automated nurture paused")
            self._out.sync()
        elif t is EventType.OPTED_OUT:
            channels = [ev.channel] if ev.channel else list(Channel)
            for ch in channels:
                if ch not in self.m.suppressed_channels:
                    self.m.suppressed_channels.append(ch)
            if all(ch in self.m.suppressed_channels for ch in self._channels):
                self.exit(JourneyStatus.OPTED_OUT, "patient opted out", now)
            else:
                self._out.note(f"opted out of {', '.join(c.value for c in channels)}")
        elif t is EventType.OPTED_IN:
            channels = [ev.channel] if ev.channel else list(Channel)
            self.m.suppressed_channels = [
                c for c in self.m.suppressed_channels if c not in channels
            ]
            self._out.note(f"opted in to {', '.join(c.value for c in channels)}")
        elif t is EventType.STAFF_PAUSED:
            self.m.staff_paused = True
            self._out.note("paused by staff")
            self._out.sync()
        elif t is EventType.STAFF_RESUMED:
            self.m.staff_paused = False
            self.m.reply_paused = False
            self._out.note("resumed by staff")
            self._out.sync()
        elif t is EventType.REVIEW_POSTED:
            self._out.note("review posted")
        elif t is EventType.ERASE:
            self.exit(JourneyStatus.ERASED, "erasure requested", now)

    def _post_op(self) -> bool:
        return self.m.stage is Stage.REBOOK and self.track.line.value == "surgical"

    def _treated(self, ev: JourneyEvent, at: datetime, now: datetime) -> None:
        total = self.track.series_sessions
        finished = bool(total) and self.m.treatments >= total
        if self.m.library:
            # A treatment after a finished series (maintenance, next package), or of another
            # service than the series', starts a new series; the next run resolves the track
            # for the service just treated.
            other = ev.service is not None and ev.service != self.m.last_service
            self.m.treatments = (
                1 if finished or (other and self.m.treatments > 0) else self.m.treatments + 1
            )
            self.m.last_service = ev.service or self.m.last_service
            self.m.track = None
        else:
            self.m.treatments = 1 if finished else self.m.treatments + 1
            self.m.last_service = ev.service
        self.m.last_treatment_at = at
        self.m.appointment_at = None
        self.m.cycle += 1
        self.m.reply_paused = False
        self.enter(Stage.REBOOK, "post_treatment", at, "treatment completed", now)
        # Each treatment starts a cycle, and each cycle is a fresh run: short histories forever.
        self.cycle_ended = True

    # ---- recording ---------------------------------------------------------------------------

    def enter(
        self, stage: Stage, sequence: str, anchor: datetime, reason: str, now: datetime
    ) -> None:
        before = self.m.stage
        self.m.stage = stage
        self.m.sequence = sequence
        self.m.anchor = anchor
        self.m.visit += 1
        self.m.stage_entered_at = now
        self._record(before, stage, reason, now)

    def exit(self, status: JourneyStatus, reason: str, now: datetime) -> None:
        self.m.status = status
        self.m.exit_reason = reason
        self._record(self.m.stage, self.m.stage, reason, now)

    def _record(
        self,
        before: Stage | None,
        stage: Stage,
        reason: str,
        now: datetime,
        *,
        at: datetime | None = None,
        branch: bool = False,
    ) -> None:
        self.m.transitions += 1
        self._out.transition(before, stage, reason, at or now, branch)
