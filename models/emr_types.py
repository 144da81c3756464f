"""Dataclasses crossing the EMR polling workflow and the EMR activities (issue 6). Ids, counts,
statuses and times only: never PHI, so nothing here needs the codec to be safe (it still is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

EMR_POLL_WORKFLOW_NAME = "EmrPollWorkflow"


def poll_schedule_id(integration_id: str) -> str:
    """Schedule (and workflow) id: the integration's opaque id only."""
    return f"emr-poll-{integration_id}"


@dataclass
class EmrPollInput:
    integration_id: str


@dataclass
class EmrPollResult:
    fetched: int = 0
    applied: int = 0
    duplicates: int = 0
    pages: int = 0
    cursor: str | None = None
    skipped: bool = False  # the integration is gone or paused


@dataclass
class ReadAppointmentInput:
    integration_id: str
    appointment_id: str


@dataclass
class AppointmentState:
    """A vendor appointment's state, in our words (integrations.model.ApptStatus values)."""

    found: bool
    status: str | None = None
    start_at: datetime | None = None


@dataclass
class ConsultCheckInput:
    """The journey whose consult time passed with neither arrival nor no-show heard."""

    journey_id: str


@dataclass
class PatientLinkInput:
    integration_id: str
    patient_id: str


@dataclass
class PatientLinkResult:
    vendor_patient_id: str
    created: bool


@dataclass
class BookingLinkInput:
    integration_id: str
    patient_id: str


@dataclass
class BookingLink:
    url: str
