"""The send gate against real databases (SQLite and PostgreSQL): ledger before provider,
idempotency, consent and suppression, the send window with deferral, the daily cap."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from activities.messaging import Messaging
from activities.providers import OutboundMessage, OutboxProvider, ProviderError
from models.enums import MessageKind, MessageStatus, Stage
from models.journey_types import SendInput, SendResult
from models.tables import Message, OutboxMessage, Patient
from tests.seed import Seeded, seed_journey, suppress

# Wednesday 2026-12-02 18:00 UTC = 10:00 in Los Angeles: inside every window.
MIDDAY = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
# 05:00 in Los Angeles.
NIGHT = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)


def send_input(seeded: Seeded, key: str, **kw: object) -> SendInput:
    base: dict[str, object] = {
        "idempotency_key": key,
        "journey_id": str(seeded.journey.id),
        "template": "nurture_1",
        "kind": MessageKind.MARKETING,
        "at": MIDDAY,
        "stage": Stage.SPEED_TO_LEAD,
    }
    base.update(kw)
    return SendInput(**base)  # type: ignore[arg-type]


def outbox(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(s.exec(select(OutboxMessage)).all())


def ledger(engine: Engine, key: str) -> Message:
    with Session(engine) as s:
        return s.exec(select(Message).where(Message.idempotency_key == key)).one()


class FlakyProvider:
    """A provider that fails the way real ones do, then succeeds; records what it was given."""

    name = "flaky"
    idempotent = False

    def __init__(self, errors: list[ProviderError]) -> None:
        self.errors = errors
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> str:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(message)
        return f"flaky-{len(self.sent)}"


def test_ledger_row_and_idempotent_resend(engine: Engine) -> None:
    seeded = seed_journey(engine)
    gate = Messaging(engine, OutboxProvider(engine))
    first = gate.send(send_input(seeded, "k1"))
    again = gate.send(send_input(seeded, "k1"))
    assert first.status is MessageStatus.SENT and again.message_id == first.message_id
    assert len(outbox(engine)) == 1
    row = ledger(engine, "k1")
    assert (row.status, row.channel, row.provider, row.sent_at) == ("sent", "sms", "outbox", MIDDAY)
    assert row.created_at == MIDDAY  # Temporal's clock, not the wall clock
    assert row.body and "Ada" in row.body and "Reply STOP" in row.body


def test_send_window_defers_and_the_reply_to_an_inquiry_is_exempt(engine: Engine) -> None:
    seeded = seed_journey(engine)
    gate = Messaging(engine, OutboxProvider(engine))
    deferred = gate.send(send_input(seeded, "night", at=NIGHT))
    assert deferred.status is MessageStatus.DEFERRED
    assert deferred.retry_at == datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # 08:00 Pacific
    assert outbox(engine) == []
    # Same key later, inside the window: the same ledger row goes out.
    sent = gate.send(send_input(seeded, "night", at=deferred.retry_at))
    assert sent.status is MessageStatus.SENT and sent.message_id == deferred.message_id

    reply = gate.send(
        send_input(
            seeded,
            "reply",
            at=NIGHT,
            template="inquiry_reply",
            kind=MessageKind.REPLY,
            immediate_reply=True,
        )
    )
    assert reply.status is MessageStatus.SENT


def test_marketing_needs_consent_and_care_needs_only_no_opt_out(engine: Engine) -> None:
    seeded = seed_journey(engine, sms_consent=False, email_consent=False)
    gate = Messaging(engine, OutboxProvider(engine))
    marketing = gate.send(send_input(seeded, "m"))
    assert marketing.status is MessageStatus.SUPPRESSED
    assert marketing.reason == "no sms marketing consent; no email marketing consent"
    care = gate.send(send_input(seeded, "c", template="consult_reminder_1d", kind=MessageKind.CARE))
    assert care.status is MessageStatus.SENT


def test_suppressed_channel_falls_back_to_email_then_to_nothing(engine: Engine) -> None:
    seeded = seed_journey(engine)
    gate = Messaging(engine, OutboxProvider(engine))
    suppress(engine, seeded.patient.id, sms=True)
    assert gate.send(send_input(seeded, "e")).channel is not None
    assert ledger(engine, "e").channel == "email"
    suppress(engine, seeded.patient.id, sms=True, email=True)
    care = gate.send(send_input(seeded, "x", template="consult_reminder_1d", kind=MessageKind.CARE))
    assert care.status is MessageStatus.SUPPRESSED
    assert len(outbox(engine)) == 1


def test_daily_cap_defers_marketing_across_journeys(engine: Engine) -> None:
    seeded = seed_journey(engine)
    gate = Messaging(engine, OutboxProvider(engine), daily_cap=2)
    for i in range(2):
        at = MIDDAY + timedelta(hours=i)
        assert gate.send(send_input(seeded, f"k{i}", at=at)).status is MessageStatus.SENT
    capped = gate.send(send_input(seeded, "k2", at=MIDDAY + timedelta(hours=3)))
    assert capped.status is MessageStatus.DEFERRED
    assert capped.retry_at == MIDDAY + timedelta(hours=24, minutes=1)
    assert ledger(engine, "k2").status_reason == "daily message cap"
    # Care messages are not capped: a reminder must not lose to a nurture text.
    care = gate.send(
        send_input(
            seeded,
            "care",
            template="consult_reminder_2h",
            kind=MessageKind.CARE,
            at=MIDDAY + timedelta(hours=3),
        )
    )
    assert care.status is MessageStatus.SENT


def test_expired_message_is_skipped(engine: Engine) -> None:
    seeded = seed_journey(engine)
    gate = Messaging(engine, OutboxProvider(engine))
    result = gate.send(
        send_input(
            seeded,
            "late",
            kind=MessageKind.CARE,
            template="consult_reminder_2h",
            expires_at=MIDDAY - timedelta(minutes=5),
        )
    )
    assert result.status is MessageStatus.SKIPPED
    assert outbox(engine) == []


def test_provider_errors_permanent_recorded_transient_retried_never_twice(engine: Engine) -> None:
    seeded = seed_journey(engine)
    permanent = FlakyProvider([ProviderError("21610", permanent=True)])
    result = Messaging(engine, permanent).send(send_input(seeded, "p"))
    assert (result.status, result.reason) == (MessageStatus.FAILED, "provider 21610")
    assert permanent.sent == []

    transient = FlakyProvider([ProviderError("503", permanent=False)])
    gate = Messaging(engine, transient)
    with pytest.raises(ProviderError):
        gate.send(send_input(seeded, "t"))
    # The row says "sending": the outcome is unknown, and this provider is not idempotent, so
    # the retry refuses to risk a second text.
    retry = gate.send(send_input(seeded, "t"))
    assert retry.status is MessageStatus.FAILED and retry.reason == "outcome unknown"
    assert transient.sent == []


def test_unknown_template_is_recorded_as_failed_not_retried(engine: Engine) -> None:
    seeded = seed_journey(engine)
    result = Messaging(engine, OutboxProvider(engine)).send(
        send_input(seeded, "bad", template="no_such_template")
    )
    assert (result.status, result.reason) == (MessageStatus.FAILED, "template error: KeyError")
    assert outbox(engine) == []


def test_a_send_waits_for_an_erasure_in_progress(postgres_engine: Engine) -> None:
    """The gate locks the patient row; so does erasure. A send that starts while an erasure
    holds the lock sees the erased patient afterwards: nothing to send to, no body written."""
    seeded = seed_journey(postgres_engine)
    gate = Messaging(postgres_engine, OutboxProvider(postgres_engine))
    outcome: dict[str, SendResult] = {}
    with Session(postgres_engine) as eraser:
        patient = eraser.get(Patient, seeded.patient.id, with_for_update=True)
        assert patient is not None
        sender = threading.Thread(
            target=lambda: outcome.update(r=gate.send(send_input(seeded, "k")))
        )
        sender.start()
        sender.join(timeout=1.0)  # bounded: proves the send is blocked, not a journey wait
        assert sender.is_alive(), "the send did not wait for the erasure's lock"
        patient.first_name = patient.phone = patient.email = None
        eraser.add(patient)
        eraser.commit()
    sender.join(timeout=30)
    assert outcome["r"].status is MessageStatus.SUPPRESSED
    assert ledger(postgres_engine, "k").body is None
    assert outbox(postgres_engine) == []


@pytest.mark.parametrize(("state", "allowed"), [("FL", 3), ("OK", 3), ("MD", 3), ("NY", 5)])
def test_state_frequency_caps_are_stricter_than_the_setting(
    engine: Engine, state: str, allowed: int
) -> None:
    # FL, OK and MD: at most 3 marketing texts on the same subject per 24 hours, whatever
    # DAILY_MESSAGE_CAP says. 15:00 UTC is inside every window in New York.
    seeded = seed_journey(engine, state=state, timezone="America/New_York")
    gate = Messaging(engine, OutboxProvider(engine), daily_cap=5)
    start = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    statuses = [
        gate.send(send_input(seeded, f"k{i}", at=start + timedelta(minutes=i))).status
        for i in range(allowed + 1)
    ]
    assert statuses == [MessageStatus.SENT] * allowed + [MessageStatus.DEFERRED]
