"""What the patient sends us, from any channel, turned into rows and follow-ups.

Each handler is one transaction (synchronous, run in a thread): it stores the inbound message in
the ledger (so the conversation reads as one thread), changes suppression and consent, and
writes one journey event row per live journey of the patient (persist-then-signal, exactly like
POST /v1/journeys/{id}/events). What must happen *after* the commit — start a journey, signal
the events, send an answer through the gate — comes back as a `Followup` for the caller to run.

Keywords (CTIA, case-insensitive, the whole message): STOP, UNSUBSCRIBE, END, QUIT, STOPALL,
REVOKE, OPTOUT, CANCEL opt the patient out of texts on every journey; START, YES, UNSTOP opt back
in; HELP (and INFO) answers with the practice's help text. Any other text from a patient with a
live journey is a reply (journeys pause, staff get a task); from anyone else it is a new
inquiry. Nothing here logs a number or a body."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from pydantic import ValidationError
from sqlmodel import Session, col, select

from activities.messaging import DirectSend
from api.intake import IntakeResult, accept_inquiry
from api.journey_starter import StartPlan
from api.schemas import Consent, InquiryCreate
from models.enums import (
    TERMINAL_STATUSES,
    Channel,
    Direction,
    EventType,
    InquiryChannel,
    MessageKind,
    MessageStatus,
)
from models.tables import (
    ConsentRecord,
    Journey,
    JourneyEventRow,
    Message,
    Patient,
    PatientHandle,
    Practice,
    PracticeAccount,
)

log = logging.getLogger(__name__)

STOP_WORDS = frozenset(
    {"STOP", "UNSUBSCRIBE", "END", "QUIT", "STOPALL", "REVOKE", "OPTOUT", "CANCEL"}
)
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
MISSED_CALL_STATUSES = frozenset({"no-answer", "busy", "failed", "canceled"})


@dataclass
class Followup:
    """After the commit: journeys to start, journeys with new events, answers to send."""

    outcome: str  # reply | opted_out | opted_in | help | inquiry | duplicate | ignored
    patient_id: uuid.UUID | None = None
    start: StartPlan | None = None
    signal_journeys: list[uuid.UUID] = field(default_factory=list)
    answers: list[DirectSend] = field(default_factory=list)


def clean(text: str, limit: int = 4000) -> str:
    """Text from outside as the database can store it: no NUL, no lone surrogates, bounded."""
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:limit]


def keyword(text: str) -> str:
    """The message as a keyword: trimmed, upper-cased, trailing punctuation dropped."""
    return re.sub(r"[\s.!]+$", "", text.strip()).upper()


def e164(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def practice_by_number(session: Session, number: str) -> Practice | None:
    normalized = e164(number)
    if normalized is None:
        return None
    return session.exec(select(Practice).where(Practice.sms_number == normalized)).first()


def patient_by(
    session: Session, practice: Practice, *, phone: str | None = None, email: str | None = None
) -> Patient | None:
    column, value = (Patient.phone, phone) if phone else (Patient.email, email)
    if not value:
        return None
    return session.exec(
        select(Patient)
        .where(Patient.practice_id == practice.id)
        .where(column == value)
        .where(col(Patient.erased_at).is_(None))
        .order_by(col(Patient.created_at))
    ).first()


def live_journeys(session: Session, patient: Patient) -> list[Journey]:
    rows = session.exec(
        select(Journey)
        .where(Journey.patient_id == patient.id)
        .order_by(col(Journey.updated_at).desc(), col(Journey.id))
    ).all()
    return [j for j in rows if j.status not in TERMINAL_STATUSES]


def signal_patient(
    session: Session,
    patient: Patient,
    event_type: EventType,
    event_id: str,
    at: datetime,
    channel: Channel | None,
) -> list[uuid.UUID]:
    """One event row per live journey (the relay delivers whatever the caller cannot)."""
    payload = {
        "type": event_type.value,
        "id": event_id,
        "at": at.isoformat(),
        "appointment_at": None,
        "service": None,
        "amount": None,
        "channel": channel.value if channel else None,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    targets = []
    for journey in live_journeys(session, patient):
        exists = session.exec(
            select(JourneyEventRow)
            .where(JourneyEventRow.journey_id == journey.id)
            .where(JourneyEventRow.event_id == event_id)
        ).first()
        if exists is None:
            session.add(
                JourneyEventRow(
                    journey_id=journey.id,
                    event_id=event_id,
                    type=event_type.value,
                    payload=payload,
                    request_hash=digest,
                )
            )
            targets.append(journey.id)
    return targets


def record_consent(
    session: Session,
    patient: Patient,
    channel: Channel,
    granted: bool,
    source: str,
    at: datetime,
    wording: str | None = None,
    evidence: str | None = None,
) -> None:
    session.add(
        ConsentRecord(
            practice_id=patient.practice_id,
            patient_id=patient.id,
            channel=channel.value,
            granted=granted,
            source=source,
            wording=wording,
            evidence=evidence,
            at=at,
        )
    )


def store_inbound(
    session: Session,
    patient: Patient,
    channel: str,
    key: str,
    body: str | None,
    at: datetime,
    provider: str,
    provider_id: str | None,
) -> None:
    session.add(
        Message(
            idempotency_key=key,
            practice_id=patient.practice_id,
            patient_id=patient.id,
            journey_id=None,
            direction=Direction.INBOUND.value,
            channel=channel,
            kind=MessageKind.REPLY.value,
            template="inbound",
            body=(body or "")[:4000],
            status=MessageStatus.RECEIVED.value,
            provider=provider,
            provider_id=provider_id[:100] if provider_id else None,
            created_at=at,
        )
    )


def seen(session: Session, key: str) -> bool:
    return session.exec(select(Message).where(Message.idempotency_key == key)).first() is not None


def new_inquiry(
    session: Session,
    practice: Practice,
    channel: InquiryChannel,
    external_id: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    message: str | None = None,
    first_name: str | None = None,
    interest: str | None = None,
    consent_sms: bool = False,
    consent_email: bool = False,
    source: str | None = None,
) -> IntakeResult | None:
    """The inquiry path of POST /v1/inquiries (api/intake.py), for channel-born leads. The
    interest is the patient's live journey's line, else the practice's first line."""
    try:
        body = InquiryCreate.model_validate(
            {
                "channel": channel.value,
                "phone": phone,
                "email": email,
                "first_name": first_name,
                "message": (message or None) and message[:2000],
                "interest": interest or practice.revenue_lines[0],
                "external_id": external_id,
                "source": source,
                "consent": {"sms": consent_sms, "email": consent_email},
            }
        )
    except ValidationError as err:
        log.info("channel inquiry not accepted: %s", [e["loc"] for e in err.errors()])
        return None
    return accept_inquiry(session, practice, body, None)


def _line_of(session: Session, patient: Patient | None) -> str | None:
    if patient is None:
        return None
    journeys = live_journeys(session, patient)
    return journeys[0].revenue_line if journeys else None


def inbound_sms(
    session: Session, practice: Practice, sender: str, text: str, sid: str, at: datetime
) -> Followup:
    key = f"twilio:{sid}"
    if seen(session, key):  # Twilio retries webhooks: a repeat changes nothing
        return Followup("duplicate")
    phone = e164(sender)
    if phone is None:
        return Followup("ignored")
    word = keyword(text)
    patient = patient_by(session, practice, phone=phone)

    if word in STOP_WORDS:
        if patient is None:
            # Remember the refusal even for a stranger: a later form with this number must
            # not text them.
            patient = Patient(practice_id=practice.id, phone=phone, timezone=practice.timezone)
            session.add(patient)
            session.flush()
        store_inbound(session, patient, Channel.SMS.value, key, text, at, "twilio", sid)
        patient.sms_suppressed = True
        session.add(patient)
        record_consent(session, patient, Channel.SMS, False, "sms_keyword", at, word, sid)
        targets = signal_patient(session, patient, EventType.OPTED_OUT, key, at, Channel.SMS)
        session.commit()
        confirm = DirectSend(
            f"{key}:opt_out_confirmation",
            patient.id,
            MessageKind.CARE,
            at,
            template="opt_out_confirmation",
            channel=Channel.SMS,
            respond=True,
            requested=True,
        )
        return Followup("opted_out", patient.id, None, targets, [confirm])

    if patient is not None and word in START_WORDS | HELP_WORDS:
        store_inbound(session, patient, Channel.SMS.value, key, text, at, "twilio", sid)
        if word in HELP_WORDS:
            session.commit()
            answer = DirectSend(
                f"{key}:help_reply",
                patient.id,
                MessageKind.CARE,
                at,
                template="help_reply",
                channel=Channel.SMS,
                respond=True,
                requested=True,
            )
            return Followup("help", patient.id, answers=[answer])
        patient.sms_suppressed = False
        patient.sms_consent = True
        session.add(patient)
        record_consent(session, patient, Channel.SMS, True, "sms_keyword", at, word, sid)
        targets = signal_patient(session, patient, EventType.OPTED_IN, key, at, Channel.SMS)
        session.commit()
        confirm = DirectSend(
            f"{key}:opt_in_confirmation",
            patient.id,
            MessageKind.CARE,
            at,
            template="opt_in_confirmation",
            channel=Channel.SMS,
            respond=True,
        )
        return Followup("opted_in", patient.id, None, targets, [confirm])

    if patient is not None and live_journeys(session, patient):
        store_inbound(session, patient, Channel.SMS.value, key, text, at, "twilio", sid)
        targets = signal_patient(session, patient, EventType.PATIENT_REPLIED, key, at, Channel.SMS)
        session.commit()
        return Followup("reply", patient.id, None, targets)

    # A stranger, or a patient whose journeys have all ended: a new inquiry.
    result = new_inquiry(
        session, practice, InquiryChannel.SMS, key, phone=phone, message=text, source="sms"
    )
    if result is None:
        return Followup("ignored")
    if result.plan is not None:
        found = session.get(Patient, result.patient_id)
        assert found is not None
        store_inbound(session, found, Channel.SMS.value, key, text, at, "twilio", sid)
        session.commit()
    return Followup("inquiry", result.patient_id, result.plan)


def missed_call(
    session: Session, practice: Practice, caller: str, call_sid: str, at: datetime
) -> Followup:
    """A call nobody answered: text the caller back at once and start (or tell) the journey.

    A new journey's own first reply *is* the text-back (exempt from the send window, sent in
    seconds); a patient already on a journey gets the missed-call text through the gate and
    their journey hears of the call as a repeat inquiry (a staff task)."""
    phone = e164(caller)
    if phone is None:  # withheld or unknown caller id: nobody to text
        return Followup("ignored")
    key = f"twilio-call:{call_sid}"
    patient = patient_by(session, practice, phone=phone)
    line = _line_of(session, patient)
    result = new_inquiry(
        session,
        practice,
        InquiryChannel.MISSED_CALL,
        key,
        phone=phone,
        interest=line,
        source="missed_call",
    )
    if result is None:
        return Followup("ignored")
    if result.plan is None:
        return Followup("duplicate", result.patient_id)
    answers = []
    if line is not None:
        answers.append(
            DirectSend(
                f"{key}:missed_call_text_back",
                result.patient_id,
                MessageKind.REPLY,
                at,
                template="missed_call_text_back",
                channel=Channel.SMS,
                respond=True,
            )
        )
    return Followup("inquiry", result.patient_id, result.plan, answers=answers)


def practice_by_account(session: Session, channel: str, account_id: str) -> Practice | None:
    account = session.exec(
        select(PracticeAccount)
        .where(PracticeAccount.channel == channel)
        .where(PracticeAccount.account_id == account_id)
    ).first()
    return session.get(Practice, account.practice_id) if account is not None else None


def inbound_dm(
    session: Session,
    practice: Practice,
    channel: str,
    handle: str,
    text: str,
    message_id: str,
    at: datetime,
    first_name: str | None = None,
) -> Followup:
    """A direct message on a platform (Instagram, Facebook, Google Business Profile): a reply
    from a patient with a live journey, else a new inquiry (channel `dm`). The platform handle
    is how the patient is known there: no phone or email is needed."""
    key = f"{channel}:{message_id}"[:250]
    if seen(session, key):
        return Followup("duplicate")
    link = session.exec(
        select(PatientHandle)
        .where(PatientHandle.practice_id == practice.id)
        .where(PatientHandle.channel == channel)
        .where(PatientHandle.handle == handle)
    ).first()
    patient = session.get(Patient, link.patient_id) if link is not None else None
    if patient is not None and live_journeys(session, patient):
        store_inbound(session, patient, channel, key, text, at, channel, message_id)
        targets = signal_patient(session, patient, EventType.PATIENT_REPLIED, key, at, None)
        session.commit()
        return Followup("reply", patient.id, None, targets)
    if patient is None:
        patient = Patient(
            practice_id=practice.id,
            first_name=(first_name or "").strip()[:100] or None,
            timezone=practice.timezone,
        )
        session.add(patient)
        session.flush()
        session.add(
            PatientHandle(
                practice_id=practice.id, patient_id=patient.id, channel=channel, handle=handle
            )
        )
    # No phone or email: the inquiry is built without the contact check of the public API
    # (the patient is named by id), and validated field by field where it matters.
    body = InquiryCreate.model_construct(
        channel=InquiryChannel.DM,
        first_name=None,
        last_name=None,
        email=None,
        phone=None,
        interest=_line_of(session, patient) or practice.revenue_lines[0],
        message=text[:2000] or None,
        source=channel,
        external_id=key[:200],
        referred_by=None,
        consent=Consent(),
        timezone=None,
        state=None,
    )
    result = accept_inquiry(session, practice, body, None, patient_id=patient.id)
    if result.plan is not None:
        store_inbound(session, patient, channel, key, text, at, channel, message_id)
        session.commit()
    return Followup("inquiry", result.patient_id, result.plan)
