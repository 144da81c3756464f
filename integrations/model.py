"""The normalized event model every adapter produces (docs/integrations.md).

An adapter says what the vendor said, in our words: an appointment was booked, moved, cancelled,
checked in, completed or missed; a treatment or invoice closed (service, amount); a patient was
created or updated. `integrations/ingest.py` turns these into journey events. These objects carry
PHI (contact details) in memory only: they are never logged, and never cross into Temporal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Vendor(StrEnum):
    BOULEVARD = "boulevard"
    ZENOTI = "zenoti"
    NEXTECH = "nextech"
    MODMED = "modmed"
    FOURD = "4d"
    PATIENTNOW = "patientnow"
    FHIR_R4 = "fhir_r4"


WEBHOOK_VENDORS = frozenset({Vendor.BOULEVARD, Vendor.ZENOTI, Vendor.FHIR_R4})
POLLING_VENDORS = frozenset(
    {Vendor.NEXTECH, Vendor.MODMED, Vendor.FOURD, Vendor.PATIENTNOW, Vendor.FHIR_R4}
)


class Kind(StrEnum):
    APPOINTMENT_BOOKED = "appointment_booked"
    APPOINTMENT_RESCHEDULED = "appointment_rescheduled"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    APPOINTMENT_ARRIVED = "appointment_arrived"
    APPOINTMENT_COMPLETED = "appointment_completed"
    APPOINTMENT_NO_SHOW = "appointment_no_show"
    # An appointment whose state the vendor reports without saying what changed (a FHIR
    # snapshot, an "updated" webhook): ingest compares with the last state it knows.
    APPOINTMENT_OBSERVED = "appointment_observed"
    TREATMENT_COMPLETED = "treatment_completed"  # invoice closed / treatment charted
    PATIENT_UPSERTED = "patient_upserted"  # created or updated


class ApptStatus(StrEnum):
    """Our view of an appointment's state, for snapshots."""

    TENTATIVE = "tentative"  # proposed, pending, waitlist: nothing to tell a journey yet
    BOOKED = "booked"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


@dataclass
class PatientRef:
    vendor_id: str | None = None
    first_name: str | None = field(default=None, repr=False)
    last_name: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)


@dataclass
class NormalizedEvent:
    kind: Kind
    vendor_event_id: str  # the vendor's own id for the event (or a stable one derived from it)
    patient: PatientRef
    occurred_at: datetime | None = None
    appointment_id: str | None = None
    appointment_at: datetime | None = None
    status: ApptStatus | None = None  # for APPOINTMENT_OBSERVED
    services: list[str] = field(default_factory=list)  # vendor service names or ids
    amount: float | None = None
    invoice_id: str | None = None
    # The vendor sends an invoice for this visit (Zenoti): the invoice, with its amount, tells
    # the journey of the treatment; the completion only updates the appointment's state.
    awaits_invoice: bool = False


class PayloadError(ValueError):
    """A vendor payload we cannot read. The message names fields, never values."""
