"""Request and response bodies of the library endpoints (api/routers/library.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.track_types import OutcomeSpec, SequenceSpec, StepSpec


class StepOut(BaseModel):
    key: str
    offset_minutes: int
    template: str | None
    task: str | None
    kind: str
    when: str | None

    @classmethod
    def of(cls, s: StepSpec) -> StepOut:
        return cls(
            key=s.key,
            offset_minutes=s.offset_minutes,
            template=s.template,
            task=s.task,
            kind=s.kind.value,
            when=s.when,
        )


class OutcomeOut(BaseModel):
    after_minutes: int
    reason: str
    stage: str | None
    sequence: str | None
    exit_status: str | None
    when: str | None

    @classmethod
    def of(cls, o: OutcomeSpec) -> OutcomeOut:
        return cls(
            after_minutes=o.after_minutes,
            reason=o.reason,
            stage=o.stage.value if o.stage else None,
            sequence=o.sequence,
            exit_status=o.exit_status.value if o.exit_status else None,
            when=o.when,
        )


class SequenceOut(BaseModel):
    id: str
    purpose: str
    stage: str
    description: str
    steps: list[StepOut]
    outcomes: list[OutcomeOut]

    @classmethod
    def of(cls, s: SequenceSpec) -> SequenceOut:
        return cls(
            id=s.id,
            purpose=s.purpose,
            stage=s.stage.value,
            description=s.description,
            steps=[StepOut.of(x) for x in s.steps],
            outcomes=[OutcomeOut.of(x) for x in s.outcomes],
        )


class TrackOut(BaseModel):
    id: str
    line: str
    family: str
    default_service: str
    services: list[str]
    sequences: dict[str, str]  # purpose -> sequence id


class ServiceOut(BaseModel):
    key: str
    name: str
    line: str
    family: str
    track: str
    recall_days: int | None
    min_interval_days: int | None
    series_sessions: int
    session_interval_days: int | None
    results_check_days: int | None
    maintenance_days: int | None
    aliases: list[str]


class TemplateOut(BaseModel):
    id: str
    marketing: bool
    sms: str
    subject: str
    used_by: list[str]  # sequence ids


class PracticeEdits(BaseModel):
    revision: int
    show_treatment_names: bool
    services: dict[str, Any]
    tracks: dict[str, Any]
    templates: dict[str, Any]


class LibraryOut(BaseModel):
    version: int
    counts: dict[str, int]
    services: list[ServiceOut]
    tracks: list[TrackOut]
    sequences: list[SequenceOut]
    templates: list[TemplateOut]
    practice: PracticeEdits | None = None


class LibrarySettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    show_treatment_names: bool


class ServiceRhythmIn(BaseModel):
    """Only the fields to change; null restores the library's value."""

    model_config = ConfigDict(extra="forbid")
    recall_days: int | None = Field(default=None, ge=1, le=3650)
    min_interval_days: int | None = Field(default=None, ge=1, le=3650)
    series_sessions: int | None = Field(default=None, ge=1, le=30)
    session_interval_days: int | None = Field(default=None, ge=1, le=3650)
    results_check_days: int | None = Field(default=None, ge=1, le=3650)
    maintenance_days: int | None = Field(default=None, ge=1, le=3650)


class TrackEditIn(BaseModel):
    """Edits by step reference `purpose.step_key` (see GET /v1/library)."""

    model_config = ConfigDict(extra="forbid")
    disabled: list[str] = Field(default_factory=list, max_length=200)
    offsets_minutes: dict[str, int] = Field(default_factory=dict)
    templates: dict[str, str] = Field(default_factory=dict)


class TemplateEditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sms: str = Field(min_length=1, max_length=2000)
    subject: str = Field(min_length=1, max_length=300)


class TimelineEntryOut(BaseModel):
    at: datetime
    day: int
    local: str
    kind: str
    what: str
    detail: str
    cycle: int


class PreviewOut(BaseModel):
    track: str
    version: str
    service: str
    timezone: str
    runs: int
    ended: str | None
    messages: int
    timeline: list[TimelineEntryOut]
