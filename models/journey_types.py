"""Dataclasses that cross the workflow boundary: workflow input, signals, query result, and
activity inputs/results. One input type and one result type per call. Ids only — never PHI —
except where an event legitimately carries a service name (encrypted later by the codec)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from models.enums import (
    Channel,
    EventType,
    JourneyStatus,
    MessageKind,
    MessageStatus,
    RevenueLine,
    Stage,
)
from models.track_types import TrackSpec

JOURNEY_WORKFLOW_NAME = "JourneyWorkflow"
SIGNAL_INQUIRY = "inquiry"
SIGNAL_EVENT = "event"
QUERY_STATE = "state"


def journey_workflow_id(practice_id: str, patient_id: str, line: RevenueLine | str) -> str:
    """`journey-{practice_id}-{patient_id}-{line}`: opaque ids only (DESIGN §5)."""
    return f"journey-{practice_id}-{patient_id}-{RevenueLine(line).value}"


@dataclass
class InquirySignal:
    """The start signal (and any repeat inquiry). `at` is when the patient asked."""

    id: str
    at: datetime
    channel: str
    service: str | None = None


@dataclass
class JourneyEvent:
    """One event of DESIGN §5. `id` makes delivery idempotent; `at` defaults to receipt time."""

    type: EventType
    id: str
    at: datetime | None = None
    appointment_at: datetime | None = None
    service: str | None = None
    amount: float | None = None
    channel: Channel | None = None


@dataclass
class JourneyMemory:
    """Everything a journey carries across continue-as-new."""

    stage: Stage = Stage.INQUIRY
    status: JourneyStatus = JourneyStatus.ACTIVE
    cycle: int = 0
    transitions: int = 0  # sequence number of recorded transitions, for idempotent recording
    stage_entered_at: datetime | None = None
    appointment_at: datetime | None = None
    bookings: int = 0  # bookings and reschedules heard; reminders re-arm through `visit`
    treatments: int = 0  # in this series/package/cycle family
    last_treatment_at: datetime | None = None
    last_service: str | None = None
    reply_paused: bool = False
    staff_paused: bool = False
    suppressed_channels: list[Channel] = field(default_factory=list)
    seen_event_ids: list[str] = field(default_factory=list)
    pending_events: list[JourneyEvent] = field(default_factory=list)
    pending_inquiries: list[InquirySignal] = field(default_factory=list)
    done_steps: list[str] = field(default_factory=list)  # scoped step keys already handled
    deferrals: dict[str, datetime] = field(default_factory=dict)  # scoped step key -> retry at
    sequence: str = "new_lead"  # which sequence of the track runs in the current stage
    anchor: datetime | None = None  # what the sequence's offsets count from
    visit: int = 0  # bumped on every (re-)entry, so re-entered sequences get fresh step keys
    chain_id: str = ""  # stable across continue-as-new; new when a closed journey starts anew
    track_version: int = 1
    exit_reason: str | None = None
    # The track library (issue 3): `library` once the journey runs library tracks; `track` is
    # the resolved track of the current cycle (None: resolve at the start of the next run);
    # `interest` is the service the patient asked about, until a treatment names one.
    library: bool = False
    track: TrackSpec | None = None
    interest: str | None = None
    asked: dict[str, datetime] = field(default_factory=dict)  # review/referral ask -> when

    @property
    def cycle_service(self) -> str | None:
        """The service this cycle follows: the last one treated, else the one asked about."""
        return self.last_service or self.interest


@dataclass
class JourneyStart:
    """Where a bulk-enrolled journey begins instead of at a fresh inquiry (issue 7): `rebook`
    running `post_treatment` from a past treatment (`anchor` = when; recall due), or
    `reactivation` running `reactivation_quiet_quote` / `reactivation_lapsed` from `anchor`.
    Read on a journey's first run only; continue-as-new carries the memory instead."""

    stage: Stage
    sequence: str
    anchor: datetime
    reason: str  # recorded with the first transition, e.g. "enrolled: recall due"
    service: str | None = None  # catalog key of the last treatment (picks the track)


@dataclass
class JourneyInput:
    journey_id: str
    practice_id: str
    patient_id: str
    revenue_line: RevenueLine
    channels: list[Channel] = field(default_factory=lambda: [Channel.SMS, Channel.EMAIL])
    timezone: str = "UTC"  # the practice's, for readable details in the Temporal UI
    memory: JourneyMemory | None = None  # set on continue-as-new
    start: JourneyStart | None = None  # bulk enrollment: start mid-map (new journeys only)


@dataclass
class JourneyResult:
    status: JourneyStatus
    stage: Stage
    reason: str | None
    cycle: int


@dataclass
class JourneyState:
    """The query result: what staff and tools see of a live journey."""

    stage: Stage
    status: JourneyStatus
    revenue_line: RevenueLine
    cycle: int
    next_action: str | None
    next_action_at: datetime | None
    appointment_at: datetime | None
    treatments: int
    history: list[str]


# ---- activities ----


@dataclass
class TransitionInput:
    journey_id: str
    workflow_id: str
    seq: int
    from_stage: Stage | None
    to_stage: Stage
    status: JourneyStatus
    reason: str
    at: datetime
    cycle: int
    branch: bool = False  # a side stage entered (review ask) while the main stage stays


@dataclass
class JourneySyncInput:
    """The journey row's live columns: status and the next action (shown by the API)."""

    journey_id: str
    status: JourneyStatus
    next_action: str | None
    next_action_at: datetime | None
    at: datetime


@dataclass
class StaffTaskInput:
    key: str  # idempotency key
    journey_id: str
    kind: str  # new_lead | patient_replied | repeat_inquiry | consult_outcome_unknown
    at: datetime


@dataclass
class ResolveTrackInput:
    practice_id: str
    revenue_line: RevenueLine
    service: str | None


@dataclass
class JourneyWrites:
    """What the workflow records between two waits, written in one transaction."""

    journey_id: str
    transitions: list[TransitionInput] = field(default_factory=list)
    staff_tasks: list[StaffTaskInput] = field(default_factory=list)
    sync: JourneySyncInput | None = None


@dataclass
class JourneyWritesResult:
    transitions_recorded: int
    staff_tasks_created: int


@dataclass
class SendInput:
    idempotency_key: str  # journey workflow id + cycle + step: stable across retries
    journey_id: str
    template: str
    kind: MessageKind
    at: datetime  # workflow time: the gate's clock
    stage: Stage
    appointment_at: datetime | None = None
    immediate_reply: bool = False  # the reply to a fresh inquiry: exempt from the send window
    expires_at: datetime | None = None  # after this the message is pointless (skip, not send)
    service: str | None = None  # catalog key: named in the text only if the practice opts in


@dataclass
class SendResult:
    status: MessageStatus
    message_id: str | None = None
    channel: Channel | None = None
    retry_at: datetime | None = None  # for DEFERRED
    reason: str | None = None
