"""The one send gate (DESIGN §6). Every outbound message passes here, in this order:

1. the ledger, by idempotency key: a message already settled is never sent again;
2. its moment: past `expires_at` (a reminder after the appointment) it is skipped;
3. consent and suppression for each channel, SMS first, then email;
4. the send window in the recipient's zone (SMS only; the reply to a fresh inquiry excepted);
5. the daily frequency cap across all the patient's journeys (marketing only);
6. render (PHI-minimal), write the ledger row as `sending`, call the provider, record its id;
7. a provider refusal is classified: opted out suppresses the number, an invalid number marks
   it unusable (both final), a transient one retries (a certain "no" keeps the row's place).

Journey messages come in through the `send` activity; messages outside a journey (answers to
HELP/STOP/START, missed-call text-backs, staff replies) through `send_direct`, the same gate.

Each outcome is one write: a deferred, suppressed or skipped message is stored as such; a sent
one is stored as `sending` before the provider call and `sent` after it.

The clock is the workflow's (`SendInput.at`), so the ledger is right under time-skipping."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from jinja2 import TemplateError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from activities.channel_templates import default_help_text
from activities.providers import (
    Effect,
    OutboundMessage,
    Provider,
    ProviderError,
    provider_idempotent,
    provider_name,
)
from activities.send_window import next_allowed
from activities.templates import render
from models.enums import Channel, Direction, MessageKind, MessageStatus
from models.journey_types import SendInput, SendResult
from models.tables import (
    ConsentRecord,
    Inquiry,
    Journey,
    Message,
    Patient,
    Practice,
    PracticeLibrary,
)
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
# State frequency caps on marketing texts per rolling 24 hours (Florida's FTSA, Oklahoma's and
# Maryland's mini-TCPAs: at most 3 on the same subject). DAILY_MESSAGE_CAP applies everywhere.
STATE_CAPS: dict[str, int] = {"FL": 3, "OK": 3, "MD": 3}


STAFF_REPLY = "staff_reply"  # the ledger's template name for a staff-written message
REQUESTED_ANSWERS = frozenset({"opt_out_confirmation", "help_reply"})


@dataclass(frozen=True)
class DirectSend:
    """A message outside any journey (the API's, not the workflow's): the gate is the same."""

    idempotency_key: str  # e.g. the inbound message's provider id + what answers it
    patient_id: uuid.UUID
    kind: MessageKind
    at: datetime
    template: str | None = None  # a template id, or
    body: str | None = None  # a body written by staff
    channel: Channel | None = None  # only this channel (answer where the patient wrote)
    # An answer to the patient's own message (HELP, START, a missed call, a staff reply to a
    # text): exempt from the send window like the reply to an inquiry.
    respond: bool = False
    # An answer the patient asked for this minute, which goes even to a number that opted out:
    # the one STOP confirmation, and the HELP answer (CTIA: HELP is always answered).
    requested: bool = False


@dataclass(frozen=True)
class _Ask:
    """What the gate is asked to send, whichever door it came through."""

    template: str | None
    kind: MessageKind
    at: datetime
    window_exempt: bool = False
    expires_at: datetime | None = None
    appointment_at: datetime | None = None
    body: str | None = None
    channel: Channel | None = None
    requested: bool = False
    service: str | None = None


class Messaging:
    def __init__(self, engine: Engine, provider: Provider, *, daily_cap: int = 3) -> None:
        self._engine = engine
        self._provider = provider
        self._daily_cap = daily_cap

    @activity.defn
    def send(self, inp: SendInput) -> SendResult:
        try:
            result = self._send(inp)
        except sa.exc.IntegrityError:
            # A concurrent attempt of the same step wrote the ledger row first; run again and
            # let the row decide (settled, or in flight).
            result = self._send(inp)
        self._observe(inp, result)
        return result

    def _observe(self, inp: SendInput, result: SendResult) -> None:
        """Metrics (activities/metrics.py): never allowed to fail the send it describes."""
        try:
            channel = result.channel.value if result.channel else None
            metrics.record_send(result.status.value, channel, inp.kind.value)
            if inp.immediate_reply and result.status is MessageStatus.SENT:
                with Session(self._engine) as session:
                    received = session.exec(
                        select(func.max(Inquiry.received_at)).where(
                            col(Inquiry.journey_id) == uuid.UUID(inp.journey_id)
                        )
                    ).first()
                if received is not None:
                    if received.tzinfo is None:  # SQLite hands back naive UTC
                        received = received.replace(tzinfo=UTC)
                    metrics.record_first_touch(datetime.now(UTC) - received)
        except Exception as exc:
            log.warning("send metrics not recorded: %s", type(exc).__name__)

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
            ask = _Ask(
                template=inp.template,
                kind=inp.kind,
                at=inp.at,
                window_exempt=inp.immediate_reply,
                expires_at=inp.expires_at,
                appointment_at=inp.appointment_at,
                service=inp.service,
            )
            return self._gate(session, patient, practice, row, ask)

    def send_direct(self, req: DirectSend) -> SendResult:
        """A message outside any journey through the same gate: the answer to HELP, STOP and
        START, the missed-call text-back, a staff reply. Called by the API, not by Temporal."""
        try:
            return self._send_direct(req)
        except sa.exc.IntegrityError:
            return self._send_direct(req)

    def _send_direct(self, req: DirectSend) -> SendResult:
        with Session(self._engine, expire_on_commit=False) as session:
            found = session.exec(
                select(Patient, Practice, Message)
                .join(Practice, col(Practice.id) == col(Patient.practice_id))
                .outerjoin(Message, col(Message.idempotency_key) == req.idempotency_key)
                .where(col(Patient.id) == req.patient_id)
                .with_for_update(of=Patient)
            ).first()
            if found is None:
                raise LookupError("patient row not found")
            patient, practice, row = found
            if row is None:
                row = Message(
                    idempotency_key=req.idempotency_key,
                    practice_id=practice.id,
                    patient_id=patient.id,
                    journey_id=None,
                    direction=Direction.OUTBOUND.value,
                    kind=req.kind.value,
                    template=req.template or STAFF_REPLY,
                    status=MessageStatus.QUEUED.value,
                    created_at=req.at,
                    # Staff's own words are kept from the start: a reply deferred to the send
                    # window is sent later from the ledger (api/followups.py), as written.
                    body=req.body,
                )
            ask = _Ask(
                template=req.template,
                kind=req.kind,
                at=req.at,
                window_exempt=req.respond,
                body=req.body,
                channel=req.channel,
                requested=req.requested,
            )
            return self._gate(session, patient, practice, row, ask)

    def _gate(
        self, session: Session, patient: Patient, practice: Practice, row: Message, ask: _Ask
    ) -> SendResult:
        if MessageStatus(row.status) in SETTLED:
            return self._result(row)
        if row.status == MessageStatus.SENDING and not provider_idempotent(
            self._provider, Channel(row.channel or Channel.SMS.value)
        ):
            if row.provider_id:
                # The provider's status callback reconciled it after the activity died: it was
                # sent, and is recorded as such.
                return self._settle(session, row, MessageStatus.SENT, None)
            # The provider may have taken it before a crash; a non-idempotent provider
            # must not be called again (never send twice). Staff can resend by hand.
            return self._settle(session, row, MessageStatus.FAILED, "outcome unknown")

        if ask.expires_at is not None and ask.at >= ask.expires_at:
            return self._settle(session, row, MessageStatus.SKIPPED, "its moment passed")

        channel, to, why_not = self._channel(patient, ask)
        if channel is None or to is None:
            return self._settle(session, row, MessageStatus.SUPPRESSED, why_not)
        row.channel = channel.value

        state = patient.state or practice.state
        if channel is Channel.SMS and not ask.window_exempt:
            tz = patient.timezone or practice.timezone
            opens = next_allowed(ask.at, tz, state)
            if opens is not None:
                return self._defer(session, row, opens, "outside the send window")

        if ask.kind is MessageKind.MARKETING:
            capped_until = self._cap(session, patient.id, row.idempotency_key, ask.at, state)
            if capped_until is not None:
                return self._defer(session, row, capped_until, "daily message cap")

        if ask.body is not None:
            subject, body = f"A message from {practice.name}", ask.body
        else:
            try:
                assert ask.template is not None
                edits = session.get(PracticeLibrary, practice.id)
                subject, body = render(
                    ask.template,
                    self._context(patient, practice, ask, edits, channel),
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
        row.provider = provider_name(self._provider, channel)
        session.add(row)
        session.commit()  # the ledger knows before the provider does

        try:
            provider_id = self._provider.send(
                OutboundMessage(
                    row.idempotency_key, channel, to, subject, body, str(row.id), ask.kind
                )
            )
        except ProviderError as err:
            return self._provider_refused(session, patient, row, channel, ask, err)
        row.status = MessageStatus.SENT.value
        row.provider_id = provider_id
        row.sent_at = ask.at
        session.add(row)
        session.commit()
        return self._result(row)

    def _provider_refused(
        self,
        session: Session,
        patient: Patient,
        row: Message,
        channel: Channel,
        ask: _Ask,
        err: ProviderError,
    ) -> SendResult:
        if err.effect is Effect.SUPPRESS or err.effect is Effect.UNUSABLE:
            # The patient's row changes with the ledger row, in one commit: the next message
            # (of any journey) sees it.
            if channel is Channel.SMS and err.effect is Effect.SUPPRESS:
                patient.sms_suppressed = True
                session.add(
                    ConsentRecord(
                        practice_id=patient.practice_id,
                        patient_id=patient.id,
                        channel=channel.value,
                        granted=False,
                        source="provider",
                        wording=f"provider refused: recipient opted out ({err.code})",
                        evidence=str(row.id),
                        at=ask.at,
                    )
                )
            elif channel is Channel.SMS:
                patient.sms_unusable = True
            else:
                patient.email_suppressed = True
            session.add(patient)
        if err.permanent:
            return self._settle(session, row, MessageStatus.FAILED, f"provider {err.code}")
        log.warning("transient provider error %s for message %s", err.code, row.id)
        if not err.delivered_maybe:
            # The provider answered "no": it certainly has not got the message, so the retry
            # may call it again. Back to deferred, keeping its place (same row, same key).
            self._defer(session, row, ask.at, f"provider {err.code}: retrying")
        raise err

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

    def _channel(self, patient: Patient, ask: _Ask) -> tuple[Channel | None, str | None, str]:
        """SMS first, then email (or only the channel asked for). Marketing needs opt-in
        consent; a reply to the patient's own inquiry and care messages need only that the
        patient has not opted out. The one confirmation of an opt-out and the HELP answer go to a
        number that opted out (CTIA), and nothing else does."""
        reasons = []
        for channel, to, consent, suppressed in (
            (Channel.SMS, patient.phone, patient.sms_consent, patient.sms_suppressed),
            (Channel.EMAIL, patient.email, patient.email_consent, patient.email_suppressed),
        ):
            if ask.channel is not None and channel is not ask.channel:
                continue
            if not to:
                reasons.append(f"no {channel.value} address")
            elif channel is Channel.SMS and patient.sms_unusable:
                reasons.append("sms number unusable")
            elif suppressed and not ask.requested:
                reasons.append(f"{channel.value} opted out")
            elif ask.kind is MessageKind.MARKETING and not consent:
                reasons.append(f"no {channel.value} marketing consent")
            else:
                return channel, to, ""
        return None, None, "; ".join(reasons)

    def _cap(
        self,
        session: Session,
        patient_id: uuid.UUID,
        key: str,
        at: datetime,
        state: str | None,
    ) -> datetime | None:
        # The stricter state rule wins: FL, OK and MD allow at most 3 marketing texts on the
        # same subject in 24 hours; every marketing message of ours is about the practice's
        # services, so all of them count as one subject.
        cap = min(self._daily_cap, STATE_CAPS.get((state or "").upper(), self._daily_cap))
        since = at - CAP_WINDOW
        sent_at = col(Message.sent_at)
        recent = (
            select(func.count(), func.min(sent_at))
            .where(Message.patient_id == patient_id)
            .where(Message.direction == Direction.OUTBOUND.value)
            .where(col(Message.status).in_(COUNTED))
            .where(sent_at > since)
            .where(Message.idempotency_key != key)
        )
        count, oldest = session.exec(recent).one()
        if count < cap:
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
        ask: _Ask,
        edits: PracticeLibrary | None,
        channel: Channel,
    ) -> dict[str, str]:
        appointment = ""
        if ask.appointment_at is not None:
            local = ask.appointment_at.astimezone(ZoneInfo(patient.timezone or practice.timezone))
            appointment = local.strftime("%a %b %-d at %-I:%M %p")
        return {
            "first_name": patient.first_name or "there",
            "practice": practice.name,
            "booking_url": practice.booking_url,
            "review_url": practice.review_url or practice.booking_url,
            "appointment": appointment,
            "help_text": practice.help_text or default_help_text(practice.name),
            # Email goes through SendGrid, which signs no BAA: a treatment is never named there,
            # whatever the practice opted into (docs/security.md).
            "treatment": _treatment(ask.service, edits if channel is Channel.SMS else None),
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
        self, session: Session, row: Message, status: MessageStatus, why: str | None
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


def direct_retry(row: Message, at: datetime) -> DirectSend:
    """The DirectSend that takes up a deferred direct message again, from its ledger row."""
    staff = row.template == STAFF_REPLY
    return DirectSend(
        idempotency_key=row.idempotency_key,
        patient_id=row.patient_id,
        kind=MessageKind(row.kind),
        at=at,
        template=None if staff else row.template,
        body=row.body if staff else None,
        channel=Channel(row.channel) if row.channel else None,
        # Answers (HELP, STOP, START, text-backs) stay exempt from the window on their retry;
        # a staff reply was deferred *to* the window and goes when it opens.
        respond=not staff,
        requested=row.template in REQUESTED_ANSWERS,
    )
