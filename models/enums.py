"""Enumerations shared by the API, the workflow and the database. Values are stable strings:
they are stored in rows, search attributes and workflow histories."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    INQUIRY = "inquiry"
    SPEED_TO_LEAD = "speed_to_lead"
    CONSULT_BOOKED = "consult_booked"
    CONSULT_SHOW = "consult_show"
    TREATMENT = "treatment"
    REBOOK = "rebook"
    REACTIVATION = "reactivation"
    REVIEWS_REFERRALS = "reviews_referrals"


class JourneyStatus(StrEnum):
    PENDING = "pending"  # accepted, workflow not started yet (relay will start it)
    ACTIVE = "active"
    PAUSED = "paused"  # staff paused, or the patient replied and staff have not resumed
    OPTED_OUT = "opted_out"
    CLOSED_WON = "closed_won"
    CLOSED_LOST = "closed_lost"
    ERASED = "erased"


TERMINAL_STATUSES = frozenset(
    {
        JourneyStatus.OPTED_OUT,
        JourneyStatus.CLOSED_WON,
        JourneyStatus.CLOSED_LOST,
        JourneyStatus.ERASED,
    }
)


class RevenueLine(StrEnum):
    SURGICAL = "surgical"
    INJECTABLES = "injectables"
    LASER_ENERGY = "laser_energy"
    BODY_CONTOURING = "body_contouring"
    DERMATOLOGY = "dermatology"  # medical recalls (skin checks) on the same machinery


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class InquiryChannel(StrEnum):
    FORM = "form"
    CALL = "call"
    MISSED_CALL = "missed_call"
    SMS = "sms"
    DM = "dm"
    CHAT = "chat"
    REFERRAL = "referral"
    EMAIL = "email"
    EMR = "emr"  # a patient first heard of through the practice's EMR (issue 6)


class EventType(StrEnum):
    CONSULT_BOOKED = "consult_booked"
    APPOINTMENT_RESCHEDULED = "appointment_rescheduled"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    ARRIVED = "arrived"
    NO_SHOW = "no_show"
    TREATMENT_COMPLETED = "treatment_completed"
    PATIENT_REPLIED = "patient_replied"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    STAFF_PAUSED = "staff_paused"
    STAFF_RESUMED = "staff_resumed"
    ERASE = "erase"
    # The patient posted a review (staff, or a review platform's webhook, say so): the funnel's
    # "reviews obtained". No journey step depends on it.
    REVIEW_POSTED = "review_posted"


class MessageKind(StrEnum):
    """What consent a message needs. `reply` answers a patient-initiated inquiry; `care` is
    transactional (appointment reminders, post-op check-ins); `marketing` needs opt-in consent."""

    REPLY = "reply"
    CARE = "care"
    MARKETING = "marketing"


class MessageStatus(StrEnum):
    QUEUED = "queued"  # a new ledger row before the gate decides (never stored as such)
    SENDING = "sending"  # ledger row written, provider call in flight
    SENT = "sent"  # handed to the provider
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # outside the send window or over the cap; retried later, same key
    SUPPRESSED = "suppressed"  # no consent / opted out / no usable channel
    SKIPPED = "skipped"  # its moment passed (a reminder after the appointment)
    FAILED = "failed"
    RECEIVED = "received"  # inbound


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class InquiryStatus(StrEnum):
    RECEIVED = "received"  # committed, journey not yet started
    JOURNEY_STARTED = "journey_started"
    DUPLICATE = "duplicate"
    ERASED = "erased"  # the patient was erased before the journey started: never start it


class EventStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DROPPED = "dropped"  # its journey ended before delivery


class Role(StrEnum):
    """Who a request acts as. `admin` is the platform operator (settings.admin_api_key); the
    others are API keys of one practice (table api_key)."""

    ADMIN = "admin"
    PRACTICE_ADMIN = "practice_admin"
    STAFF = "staff"
    INTEGRATION = "integration"
