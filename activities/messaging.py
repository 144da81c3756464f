"""The one send gate (DESIGN §6). Every outbound message passes here, in this order:

1. the ledger, by idempotency key: a message already settled is never sent again;
2. its moment: past `expires_at` (a reminder after the appointment) it is skipped;
3. consent and suppression for each channel, SMS first, then email;
4. the send window in the recipient's zone (SMS only; the reply to a fresh inquiry excepted);
5. the daily frequency cap across all the patient's journeys (marketing only);
6. render (PHI-minimal), write the ledger row as `sending`, call the provider, record its id.

Each outcome is one write: a deferred, suppressed or skipped message is stored as such; a sent
one is stored as `sending` before the provider call and `sent` after it.

The clock is the workflow's (`SendInput.at`), so the ledger is right under time-skipping."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from jinja2 import TemplateError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers import OutboundMessage, Provider, ProviderError
from activities.send_window import next_allowed
from activities.templates import render
from models.enums import Channel, Direction, MessageKind, MessageStatus
from models.journey_types import SendInput, SendResult
from models.tables import Journey, Message, Patient, Practice, PracticeLibrary
from workflows.catalog import find_service

log = logging.getLogger(__name__)

SETTLED = {
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.SUPPRESSED,
    MessageStatus.SKIPPED,
    MessageStatus.FAILED,
}
COUNTED = (MessageStatus.SENT.value, MessageStatus.DELIVERED.value, MessageStatus.SENDING.value)
CAP_WINDOW = timedelta(hours=24)


class Messaging:
    def __init__(self, engine: Engine, provider: Provider, *, daily_cap: int = 3) -> None:
        self._engine = engine
        self._provider = provider
        self._daily_cap = daily_cap

    @activity.defn
    def send(self, inp: SendInput) -> SendResult:
        try:
            return self._send(inp)
        except sa.exc.IntegrityError:
            # A concurrent attempt of the same step wrote the ledger row first; run again and
            # let the row decide (settled, or in flight).
            return self._send(inp)

    def _send(self, inp: SendInput) -> SendResult:
        with Session(self._engine, expire_on_commit=False) as session:
            # One round trip for the journey, its patient and practice, and the ledger row.
            found = session.exec(
                select(Journey, Patient, Practice, Message)
                .join(Patient, col(Patient.id) == col(Journey.patient_id))
                .join(Practice, col(Practice.id) == col(Journey.practice_id))
                .outerjoin(Message, col(Message.idempotency_key) == inp.idempotency_key)
                .where(col(Journey.id) == uuid.UUID(inp.journey_id))
                # Locks the patient row until this attempt's first commit: an erasure (which
                # locks it too) either happens before (we see no address) or after (its scrub
                # sees our body). PostgreSQL only; SQLite serializes writers anyway.
                .with_for_update(of=Patient)
            ).first()
            if found is None:
                raise ApplicationError("journey row not found", non_retryable=True)
            journey, patient, practice, row = found
            if row is None:
                row = self._new_row(inp, journey)
            elif MessageStatus(row.status) in SETTLED:
                return self._result(row)
            elif row.status == MessageStatus.SENDING and not self._provider.idempotent:
                # The provider may have taken it before a crash; a non-idempotent provider
                # must not be called again (never send twice). Staff can resend by hand.
                return self._settle(session, row, MessageStatus.FAILED, "outcome unknown")

            if inp.expires_at is not None and inp.at >= inp.expires_at:
                return self._settle(session, row, MessageStatus.SKIPPED, "its moment passed")

            channel, to, why_not = self._channel(patient, inp.kind)
            if channel is None or to is None:
                return self._settle(session, row, MessageStatus.SUPPRESSED, why_not)
            row.channel = channel.value

            if channel is Channel.SMS and not inp.immediate_reply:
                tz = patient.timezone or practice.timezone
                opens = next_allowed(inp.at, tz, patient.state or practice.state)
                if opens is not None:
                    return self._defer(session, row, opens, "outside the send window")

            if inp.kind is MessageKind.MARKETING:
                capped_until = self._cap(session, patient.id, inp)
                if capped_until is not None:
                    return self._defer(session, row, capped_until, "daily message cap")

            try:
                edits = session.get(PracticeLibrary, practice.id)
                subject, body = render(
                    inp.template,
                    self._context(patient, practice, inp, edits),
                    edits.templates if edits else None,
                )
            except (KeyError, TemplateError) as err:
                # A broken template will not mend itself on retry: record it, don't loop.
                why = f"template error: {type(err).__name__}"
                return self._settle(session, row, MessageStatus.FAILED, why)
            row.body = body
            row.status = MessageStatus.SENDING.value
            row.attempts += 1
            row.retry_at = None
            session.add(row)
            session.commit()  # the ledger knows before the provider does

            try:
                provider_id = self._provider.send(
                    OutboundMessage(inp.idempotency_key, channel, to, subject, body)
                )
            except ProviderError as err:
                if err.permanent:
                    return self._settle(session, row, MessageStatus.FAILED, f"provider {err.code}")
                log.warning("transient provider error %s for message %s", err.code, row.id)
                raise
            row.status = MessageStatus.SENT.value
            row.provider = self._provider.name
            row.provider_id = provider_id
            row.sent_at = inp.at
            session.add(row)
            session.commit()
            return self._result(row)

    # ---- the steps --------------------------------------------------------------------------

    @staticmethod
    def _new_row(inp: SendInput, journey: Journey) -> Message:
        """Not yet stored: the first write settles it, defers it or marks it `sending`."""
        return Message(
            idempotency_key=inp.idempotency_key,
            practice_id=journey.practice_id,
            patient_id=journey.patient_id,
            journey_id=journey.id,
            direction=Direction.OUTBOUND.value,
            kind=inp.kind.value,
            template=inp.template,
            stage=inp.stage.value,
            status=MessageStatus.QUEUED.value,
            created_at=inp.at,
        )

    def _channel(
        self, patient: Patient, kind: MessageKind
    ) -> tuple[Channel | None, str | None, str]:
        """SMS first, then email. Marketing needs opt-in consent; a reply to the patient's own
        inquiry and care messages need only that the patient has not opted out."""
        reasons = []
        for channel, to, consent, suppressed in (
            (Channel.SMS, patient.phone, patient.sms_consent, patient.sms_suppressed),
            (Channel.EMAIL, patient.email, patient.email_consent, patient.email_suppressed),
        ):
            if not to:
                reasons.append(f"no {channel.value} address")
            elif suppressed:
                reasons.append(f"{channel.value} opted out")
            elif kind is MessageKind.MARKETING and not consent:
                reasons.append(f"no {channel.value} marketing consent")
            else:
                return channel, to, ""
        return None, None, "; ".join(reasons)

    def _cap(self, session: Session, patient_id: uuid.UUID, inp: SendInput) -> datetime | None:
        since = inp.at - CAP_WINDOW
        sent_at = col(Message.sent_at)
        recent = (
            select(func.count(), func.min(sent_at))
            .where(Message.patient_id == patient_id)
            .where(Message.direction == Direction.OUTBOUND.value)
            .where(col(Message.status).in_(COUNTED))
            .where(sent_at > since)
            .where(Message.idempotency_key != inp.idempotency_key)
        )
        count, oldest = session.exec(recent).one()
        if count < self._daily_cap:
            return None
        # SQLite aggregates lose the column type: min() may come back as a naive string.
        oldest_at = oldest if isinstance(oldest, datetime) else datetime.fromisoformat(str(oldest))
        if oldest_at.tzinfo is None:
            oldest_at = oldest_at.replace(tzinfo=UTC)
        return oldest_at + CAP_WINDOW + timedelta(minutes=1)

    def _context(
        self,
        patient: Patient,
        practice: Practice,
        inp: SendInput,
        edits: PracticeLibrary | None,
    ) -> dict[str, str]:
        appointment = ""
        if inp.appointment_at is not None:
            local = inp.appointment_at.astimezone(ZoneInfo(patient.timezone or practice.timezone))
            appointment = local.strftime("%a %b %-d at %-I:%M %p")
        return {
            "first_name": patient.first_name or "there",
            "practice": practice.name,
            "booking_url": practice.booking_url,
            "review_url": practice.review_url or practice.booking_url,
            "appointment": appointment,
            "treatment": _treatment(inp.service, edits),
            "referral_url": _with_query(practice.booking_url, "ref", str(patient.id)),
        }

    # ---- outcomes ---------------------------------------------------------------------------

    def _defer(self, session: Session, row: Message, until: datetime, why: str) -> SendResult:
        row.status = MessageStatus.DEFERRED.value
        row.status_reason = why
        row.retry_at = until
        session.add(row)
        session.commit()
        return self._result(row)

    def _settle(
        self, session: Session, row: Message, status: MessageStatus, why: str
    ) -> SendResult:
        row.status = status.value
        row.status_reason = why
        row.retry_at = None
        session.add(row)
        session.commit()
        return self._result(row)

    @staticmethod
    def _result(row: Message) -> SendResult:
        return SendResult(
            status=MessageStatus(row.status),
            message_id=str(row.id),
            channel=Channel(row.channel) if row.channel else None,
            retry_at=row.retry_at,
            reason=row.status_reason,
        )


def _treatment(service: str | None, edits: PracticeLibrary | None) -> str:
    """A treatment is PHI: named only when the practice opted in, else a neutral phrase."""
    found = find_service(service)
    if found is None or edits is None or not edits.show_treatment_names:
        return "your treatment"
    return found.name


def _with_query(url: str, key: str, value: str) -> str:
    """The booking link with the referrer's opaque id, for referral attribution."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), (key, value)])
    return urlunsplit(parts._replace(query=query))
