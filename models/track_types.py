"""A track as data: the sequences a journey runs, stage by stage, with their timed steps and
outcomes. These dataclasses cross the workflow boundary (an activity resolves a practice's track
when a cycle starts; the journey carries it across continue-as-new), so durations are whole
minutes, which every payload converter round-trips exactly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from models.enums import JourneyStatus, MessageKind, RevenueLine, Stage


@dataclass
class StepSpec:
    """One timed action, `offset_minutes` from its sequence's anchor (negative: before it).

    `template` sends a message through the gate; `task` raises a staff task instead. `grace` is
    how late a step may still run: past it the step is skipped, never fired late. `branch` marks
    a step that enters a side stage (the review ask) without leaving the main one. `when`
    restricts a post-treatment step to "series_open" or "series_done"."""

    key: str
    offset_minutes: int
    template: str | None = None
    kind: MessageKind = MessageKind.MARKETING
    task: str | None = None
    grace_minutes: int = 12 * 60
    branch: Stage | None = None
    when: str | None = None
    immediate_reply: bool = False
    # "consult_outcome": ask the EMR what became of the consult (arrived, no-show, cancelled).
    check: str | None = None

    @property
    def offset(self) -> timedelta:
        return timedelta(minutes=self.offset_minutes)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.grace_minutes)


@dataclass
class OutcomeSpec:
    """What happens when a sequence runs out, `after_minutes` past its anchor: enter `stage`
    running `sequence`, or end the journey with `exit_status`; `reason` is recorded."""

    after_minutes: int
    reason: str
    stage: Stage | None = None
    sequence: str | None = None
    exit_status: JourneyStatus | None = None
    when: str | None = None

    @property
    def after(self) -> timedelta:
        return timedelta(minutes=self.after_minutes)


@dataclass
class SequenceSpec:
    """A ready sequence: `id` is unique in the library, `purpose` is the slot it fills in a
    track (new_lead, consult_reminders, post_treatment, ...)."""

    id: str
    purpose: str
    stage: Stage
    description: str
    steps: list[StepSpec] = field(default_factory=list)
    outcomes: list[OutcomeSpec] = field(default_factory=list)


@dataclass
class TrackSpec:
    """A resolved track: one family's sequences with a service's rhythm and a practice's
    overrides applied. `version` is "library.revision" (revision 0: no practice edits)."""

    id: str
    line: RevenueLine
    family: str
    service: str
    version: str
    series_sessions: int
    sequences: dict[str, SequenceSpec]
