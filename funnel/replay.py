"""An imported history as funnel data: each patient's records on a line are replayed through the
journey state machine (workflows/machine.py) — the one live journeys run — with a send gate that
sends nothing, because no automation ran then. The stage changes it records (a lead that went
cold after the track's new-lead window, a quote that went quiet, a recall that lapsed) are the
same the live map counts, so "historical" and "live" are comparable stage by stage."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from activities.library import practice_library
from funnel.metrics import FunnelData, Lead, Transition, Treatment
from models.enums import Channel, EventType, MessageStatus, RevenueLine, Stage
from models.journey_types import InquirySignal, JourneyEvent, JourneyMemory
from models.tables import HistoryRecord
from models.tables import PracticeLibrary as PracticeLibraryRow
from models.track_types import TrackSpec
from workflows.library import REPLY, resolve_track
from workflows.machine import JourneyMachine

CANCEL_BEFORE = timedelta(minutes=1)
# Same-moment records in the order they happen: booked, then seen, then treated.
_ORDER = {
    EventType.CONSULT_BOOKED: 0,
    EventType.APPOINTMENT_CANCELLED: 1,
    EventType.NO_SHOW: 1,
    EventType.ARRIVED: 2,
    EventType.TREATMENT_COMPLETED: 3,
}


class _Collector:
    """The machine's listener: keeps the transitions; tasks and notes are irrelevant here."""

    def __init__(self, journey: str, line: str) -> None:
        self.journey, self.line = journey, line
        self.transitions: list[Transition] = []
        self.status = ""
        self.machine: JourneyMachine | None = None

    def transition(
        self, before: Stage | None, stage: Stage, reason: str, at: datetime, branch: bool
    ) -> None:
        assert self.machine is not None
        self.transitions.append(
            Transition(
                self.journey,
                self.line,
                before.value if before else None,
                stage.value,
                self.machine.status().value,
                reason,
                at,
                len(self.transitions),
            )
        )

    def staff_task(self, kind: str, key_suffix: str) -> None:
        pass

    def note(self, text: str, at: datetime | None = None) -> None:
        pass

    def sync(self) -> None:
        pass


@dataclass
class _Record:
    kind: str
    at: datetime
    service: str | None
    booked_at: datetime | None = None
    status: str | None = None
    amount: float | None = None


def _events(records: list[_Record]) -> list[JourneyEvent]:
    out: list[JourneyEvent] = []
    for n, r in enumerate(records):
        if r.kind == "appointment":
            # Without a booking date the booking is taken as made at the appointment itself.
            booked = r.booked_at if r.booked_at is not None and r.booked_at <= r.at else r.at
            out.append(JourneyEvent(EventType.CONSULT_BOOKED, f"b{n}", booked, r.at))
            follow = {
                "completed": EventType.ARRIVED,
                "no_show": EventType.NO_SHOW,
                "cancelled": EventType.APPOINTMENT_CANCELLED,
            }.get(r.status or "")
            if follow is EventType.APPOINTMENT_CANCELLED:
                # Exports give no cancellation time: a cancelled appointment is taken as
                # cancelled just before its time (so it leaks from consult_booked).
                out.append(JourneyEvent(follow, f"o{n}", max(booked, r.at - CANCEL_BEFORE)))
            elif follow is not None:
                out.append(JourneyEvent(follow, f"o{n}", r.at))
        elif r.kind == "treatment":
            out.append(
                JourneyEvent(
                    EventType.TREATMENT_COMPLETED, f"t{n}", r.at, service=r.service, amount=r.amount
                )
            )
    out.sort(key=lambda e: (e.at, _ORDER[e.type]))
    return out


Resolve = Callable[[RevenueLine, str | None], TrackSpec]


def replay(
    journey: str,
    line: RevenueLine,
    records: list[_Record],
    until: datetime,
    resolve: Resolve,
) -> list[Transition]:
    """The transitions a watching, silent journey would have recorded for these records."""
    records = sorted(records, key=lambda r: r.at)
    lead = next((r for r in records if r.kind == "lead"), None)
    events = _events([r for r in records if r.kind != "lead"])
    start = lead.at if lead is not None else (events[0].at if events else None)
    if start is None:
        return []
    interest = lead.service if lead is not None else None
    out = _Collector(journey, line.value)
    m = JourneyMemory(library=True, interest=interest, chain_id="history")
    machine = JourneyMachine(m, resolve(line, interest), [Channel.SMS, Channel.EMAIL], out)
    out.machine = machine
    now = start
    machine.begin(now)
    m.done_steps.append(machine.scoped(REPLY))  # nobody replied automatically then
    if lead is not None:
        machine.record_start(InquirySignal("history", lead.at, "import", interest), now)
    while not machine.ended:
        if machine.cycle_ended:
            machine.cycle_ended = False
            m.track = machine.track = resolve(line, m.last_service or m.interest)
        planned = machine.plan(now)
        upcoming = events[0] if events else None
        if upcoming is not None and upcoming.at is not None and upcoming.at < planned.at:
            events.pop(0)
            now = max(now, upcoming.at)
            machine.handle(upcoming, now, "")
            continue
        if planned.at > until:
            break
        now = max(now, planned.at)
        if planned.step is not None and planned.key is not None:
            if machine.ready(planned.step, planned.key, planned.at, now):
                machine.sent(planned.step, planned.key, MessageStatus.SKIPPED, None, now, "")
        elif planned.outcome is not None:
            machine.run_outcome(planned.outcome, now)
    return out.transitions


def load(session: Session, practice_id: uuid.UUID, until: datetime | None = None) -> FunnelData:
    """The practice's imported history as funnel data; `until` (default: the latest record)
    is where the replay stops, so what was still open then stays open."""
    groups: dict[tuple[uuid.UUID, str], list[_Record]] = defaultdict(list)
    data = FunnelData()
    latest: datetime | None = None
    for r in session.exec(select(HistoryRecord).where(HistoryRecord.practice_id == practice_id)):
        groups[(r.history_patient_id, r.revenue_line)].append(
            _Record(r.kind, r.at, r.service, r.booked_at, r.status, r.amount)
        )
        latest = r.at if latest is None or r.at > latest else latest
        if r.kind == "lead":
            data.leads.append(Lead(r.revenue_line, r.at, r.responded_at, r.referred))
        elif r.kind == "treatment":
            data.treatments.append(Treatment(r.revenue_line, r.at, r.amount or 0.0))
    if latest is None:
        return data
    cache: dict[tuple[RevenueLine, str | None], TrackSpec] = {}
    # The practice's own rhythms (edited recall days, say) decide when a recall lapsed.
    library = practice_library(session.get(PracticeLibraryRow, practice_id))

    def resolve(line: RevenueLine, service: str | None) -> TrackSpec:
        if (line, service) not in cache:
            cache[(line, service)] = resolve_track(line, service, library)
        return cache[(line, service)]

    for (patient, line), records in groups.items():
        data.transitions.extend(
            replay(f"h:{patient}:{line}", RevenueLine(line), records, until or latest, resolve)
        )
    return data
