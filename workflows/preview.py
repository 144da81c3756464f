"""A journey before it runs: the timeline of messages, stage changes and staff tasks a patient
would get for a scenario ("booked on day 3, no-show, treated with tox on day 10").

It drives the same `JourneyMachine` the workflow drives, with the scenario's events instead of
signals and a simulated send gate instead of the activity: the same planning code, the same
send-window rules (activities/send_window.py) and the same daily cap, so the preview is what the
journey then sends (tests/workflows/test_preview_matches.py runs both and compares).

What the simulation cannot know: the patient's replies, opt-outs and consent (it assumes a
reachable, consenting patient on `channel`) and other journeys' messages toward the daily cap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from activities.send_window import next_allowed
from models.enums import Channel, EventType, MessageKind, MessageStatus, Stage
from models.journey_types import InquirySignal, JourneyEvent, JourneyMemory
from models.track_types import StepSpec, TrackSpec
from workflows.library import REPLY
from workflows.machine import JourneyMachine

CAP_WINDOW = timedelta(hours=24)
DEFAULT_EVENT_TIME = time(10, 30)


@dataclass
class ScenarioEvent:
    """An event `day` days after the inquiry, at `at_time` local; an appointment (booked,
    rescheduled) on `appointment_day` at `appointment_time` local."""

    day: int
    type: EventType
    at_time: time = DEFAULT_EVENT_TIME
    appointment_day: int | None = None
    appointment_time: time = time(14, 0)
    service: str | None = None
    amount: float | None = None


@dataclass
class Scenario:
    start: datetime  # the inquiry, aware
    timezone: str  # the recipient's zone (the practice's by default)
    state: str | None  # the recipient's state, for the send window
    events: list[ScenarioEvent] = field(default_factory=list)
    horizon_days: int = 400
    channel: Channel = Channel.SMS
    interest: str | None = None  # the service asked about, if any
    daily_cap: int = 3

    def local_at(self, day: int, at: time) -> datetime:
        zone = ZoneInfo(self.timezone)
        date = self.start.astimezone(zone).date() + timedelta(days=day)
        return datetime.combine(date, at, tzinfo=zone).astimezone(UTC)


@dataclass
class TimelineEntry:
    at: datetime
    day: int  # days after the inquiry, by the recipient's calendar
    local: str  # the local wall-clock time, ISO
    kind: str  # message | stage | task | event | skipped
    what: str  # template id, stage, task kind or event type
    detail: str = ""  # reason, sequence and step, channel
    cycle: int = 0


@dataclass
class Preview:
    track: TrackSpec
    timeline: list[TimelineEntry]
    runs: int  # workflow runs the journey would take (continue-as-new per cycle)
    ended: str | None  # the exit status, if the journey ends within the horizon

    @property
    def messages(self) -> list[TimelineEntry]:
        return [e for e in self.timeline if e.kind == "message"]


class _Recorder:
    """The machine's listener: keeps what staff would see, in order."""

    def __init__(self, sim: _Simulation) -> None:
        self._sim = sim

    def transition(
        self, before: Stage | None, stage: Stage, reason: str, at: datetime, branch: bool
    ) -> None:
        frm = before.value if before else "-"
        self._sim.add(at, "stage", stage.value, f"{frm} -> {stage.value}: {reason}")

    def staff_task(self, kind: str, key_suffix: str) -> None:
        self._sim.add(self._sim.now, "task", kind)

    def note(self, text: str, at: datetime | None = None) -> None:
        pass

    def sync(self) -> None:
        pass


class _Simulation:
    def __init__(self, scenario: Scenario, resolve: Callable[[str | None], TrackSpec]) -> None:
        self.sc = scenario
        self.resolve = resolve
        self.now = scenario.start
        self.timeline: list[TimelineEntry] = []
        self.sent_at: list[datetime] = []
        self.memory = JourneyMemory(library=True, interest=scenario.interest, chain_id="preview")
        self.machine = JourneyMachine(
            self.memory, resolve(scenario.interest), [scenario.channel], _Recorder(self)
        )
        self.runs = 1

    def add(self, at: datetime, kind: str, what: str, detail: str = "") -> None:
        zone = ZoneInfo(self.sc.timezone)
        local = at.astimezone(zone)
        day = (local.date() - self.sc.start.astimezone(zone).date()).days
        entry = TimelineEntry(at, day, local.isoformat(), kind, what, detail, self.memory.cycle)
        self.timeline.append(entry)

    def local(self, at: datetime | None) -> str:
        return at.astimezone(ZoneInfo(self.sc.timezone)).isoformat() if at else ""

    # ---- the gate, simulated -----------------------------------------------------------------

    def gate(self, step: StepSpec, at: datetime) -> tuple[MessageStatus, datetime | None]:
        """activities/messaging.py's decisions for a reachable, consenting patient."""
        expires = self.machine.expires_at()
        if expires is not None and at >= expires:
            return MessageStatus.SKIPPED, None
        if self.sc.channel is Channel.SMS and not step.immediate_reply:
            opens = next_allowed(at, self.sc.timezone, self.sc.state)
            if opens is not None:
                return MessageStatus.DEFERRED, opens
        if step.kind is MessageKind.MARKETING:
            recent = [t for t in self.sent_at if t > at - CAP_WINDOW]
            if len(recent) >= self.sc.daily_cap:
                return MessageStatus.DEFERRED, min(recent) + CAP_WINDOW + timedelta(minutes=1)
        return MessageStatus.SENT, None

    def run_step(self, step: StepSpec, key: str, due: datetime) -> None:
        if not self.machine.ready(step, key, due, self.now):
            return
        if step.check is not None:
            # The EMR's answer cannot be known ahead: the preview shows the question only.
            self.add(self.now, "check", step.check, f"{self.memory.sequence}.{step.key}")
            self.machine.checked(key, None, self.now, "")
            return
        status, retry_at = self.gate(step, self.now)
        if status is MessageStatus.SENT:
            self.sent_at.append(self.now)
            detail = f"{self.memory.sequence}.{step.key} via {self.sc.channel.value}"
            self.add(self.now, "message", step.template or "", detail)
        elif status is MessageStatus.SKIPPED:
            self.add(self.now, "skipped", step.template or "", "its moment passed")
        self.machine.sent(step, key, status, retry_at, self.now, self.local(retry_at))

    # ---- the journey -------------------------------------------------------------------------

    def event(self, ev: ScenarioEvent, n: int) -> JourneyEvent:
        appointment = None
        if ev.appointment_day is not None:
            appointment = self.sc.local_at(ev.appointment_day, ev.appointment_time)
        return JourneyEvent(
            type=ev.type,
            id=f"scenario-{n}",
            at=self.sc.local_at(ev.day, ev.at_time),
            appointment_at=appointment,
            service=ev.service,
            amount=ev.amount,
        )

    def run(self) -> Preview:
        m, machine = self.memory, self.machine
        machine.begin(self.now)
        self.run_step(REPLY, machine.scoped(REPLY), self.now)
        machine.record_start(
            InquirySignal("scenario", self.sc.start, "form", self.sc.interest), self.now
        )
        track = self.resolve(m.interest)
        m.track = machine.track = track
        events = sorted(
            (self.event(ev, n) for n, ev in enumerate(self.sc.events)),
            key=lambda e: e.at or self.now,
        )
        horizon = self.sc.start + timedelta(days=self.sc.horizon_days)
        while not machine.ended:
            if machine.cycle_ended:
                # The workflow continues as new here and resolves the track for the service
                # just treated.
                machine.cycle_ended = False
                self.runs += 1
                m.track = machine.track = self.resolve(m.cycle_service)
            planned = machine.plan(self.now)
            upcoming = events[0] if events else None
            if upcoming is not None and upcoming.at is not None and upcoming.at < planned.at:
                events.pop(0)
                self.now = max(self.now, upcoming.at)
                self.add(self.now, "event", upcoming.type.value)
                local = self.local(upcoming.appointment_at)
                machine.handle(upcoming, self.now, local)
                continue
            if planned.at > horizon:
                break
            self.now = max(self.now, planned.at)
            if planned.step is not None and planned.key is not None:
                self.run_step(planned.step, planned.key, planned.at)
            elif planned.outcome is not None:
                machine.run_outcome(planned.outcome, self.now)
        ended = m.status.value if machine.ended else None
        return Preview(track, self.timeline, self.runs, ended)


def preview(scenario: Scenario, resolve: Callable[[str | None], TrackSpec]) -> Preview:
    """The timeline for `scenario`; `resolve(service)` gives the track for a cycle (the
    practice's, with its edits), exactly as the workflow's resolve activity would."""
    return _Simulation(scenario, resolve).run()
