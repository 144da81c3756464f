"""The real `twilio` and `sendgrid` libraries through the send gate, against in-process fakes:
what leaves, error classification, the throughput throttle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from activities.channels import SendGridProvider, Throttle, TwilioProvider
from activities.messaging import DirectSend, Messaging
from activities.providers import ChannelRouter, OutboxProvider, ProviderError
from api.followups import send_due
from models.enums import Channel, MessageKind, MessageStatus
from models.tables import ConsentRecord, Message, Patient, PracticeLibrary
from tests.activities.test_send_gate import MIDDAY, NIGHT, ledger, send_input
from tests.fakes import TwilioFake, sendgrid_fake
from tests.seed import seed_journey

SERVICE = "MG" + "0" * 32


def twilio(fake: TwilioFake, throttle: Throttle | None = None) -> TwilioProvider:
    return TwilioProvider(
        "AC" + "1" * 32,
        "auth-token",
        SERVICE,
        "https://api.example.com/",
        http_client=fake,
        throttle=throttle,
    )


def patient(engine: Engine, patient_id: object) -> Patient:
    with Session(engine) as s:
        row = s.get(Patient, patient_id)
        assert row is not None
        return row


def test_twilio_sends_through_the_messaging_service_with_a_status_callback(engine: Engine) -> None:
    seeded = seed_journey(engine)
    fake = TwilioFake()
    result = Messaging(engine, twilio(fake)).send(send_input(seeded, "k"))
    assert result.status is MessageStatus.SENT
    (sent,) = fake.accepted
    row = ledger(engine, "k")
    assert sent["MessagingServiceSid"] == SERVICE and sent["To"] == "+14155550123"
    assert "From" not in sent  # the Messaging Service picks the sender
    assert sent["Body"] == row.body
    assert sent["StatusCallback"] == (
        f"https://api.example.com/v1/webhooks/twilio/status?message_id={row.id}"
    )
    assert (row.provider, row.provider_id) == ("twilio", sent["sid"])


def test_21610_suppresses_the_number_and_records_why(engine: Engine) -> None:
    seeded = seed_journey(engine)
    fake = TwilioFake(errors=[(400, 21610)])
    gate = Messaging(engine, twilio(fake))
    result = gate.send(send_input(seeded, "k"))
    assert (result.status, result.reason) == (MessageStatus.FAILED, "provider 21610")
    assert patient(engine, seeded.patient.id).sms_suppressed
    with Session(engine) as s:
        (proof,) = s.exec(select(ConsentRecord)).all()
    assert (proof.channel, proof.granted, proof.source) == ("sms", False, "provider")
    # The next message does not try the number again.
    again = gate.send(
        send_input(seeded, "k2", template="consult_reminder_1d", kind=MessageKind.CARE)
    )
    assert again.channel is Channel.EMAIL and len(fake.accepted) == 0


@pytest.mark.parametrize("code", [21211, 21614])
def test_invalid_or_landline_number_is_marked_unusable(engine: Engine, code: int) -> None:
    seeded = seed_journey(engine, email=None)
    fake = TwilioFake(errors=[(400, code)])
    gate = Messaging(engine, twilio(fake))
    assert gate.send(send_input(seeded, "k")).status is MessageStatus.FAILED
    p = patient(engine, seeded.patient.id)
    assert p.sms_unusable and not p.sms_suppressed  # not an opt-out
    care = gate.send(
        send_input(seeded, "k2", template="consult_reminder_1d", kind=MessageKind.CARE)
    )
    assert (care.status, care.reason) == (
        MessageStatus.SUPPRESSED,
        "sms number unusable; no email address",
    )


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (503, 20500), (401, 20003)])
def test_transient_refusal_retries_and_sends_once(engine: Engine, status: int, code: int) -> None:
    seeded = seed_journey(engine)
    fake = TwilioFake(errors=[(status, code)])
    gate = Messaging(engine, twilio(fake))
    with pytest.raises(ProviderError) as raised:
        gate.send(send_input(seeded, "k"))
    assert not raised.value.permanent
    # Twilio said no, so it has nothing: the row keeps its place and the retry sends it.
    assert ledger(engine, "k").status == "deferred"
    assert gate.send(send_input(seeded, "k")).status is MessageStatus.SENT
    assert gate.send(send_input(seeded, "k")).status is MessageStatus.SENT
    assert len(fake.accepted) == 1


def test_other_refusals_are_final_for_the_message_only(engine: Engine) -> None:
    seeded = seed_journey(engine)
    fake = TwilioFake(errors=[(400, 21602)])  # message body required, say
    result = Messaging(engine, twilio(fake)).send(send_input(seeded, "k"))
    assert result.status is MessageStatus.FAILED
    p = patient(engine, seeded.patient.id)
    assert not (p.sms_suppressed or p.sms_unusable)


def test_sendgrid_groups_and_opaque_custom_args(engine: Engine) -> None:
    seeded = seed_journey(engine, phone=None)
    with sendgrid_fake() as fake:
        email = SendGridProvider(
            "SG.key",
            "hello@glow.example.com",
            marketing_group_id=101,
            transactional_group_id=202,
            host=fake.base_url,
        )
        gate = Messaging(engine, ChannelRouter({Channel.SMS: email, Channel.EMAIL: email}))
        assert gate.send(send_input(seeded, "m")).status is MessageStatus.SENT
        care = send_input(seeded, "c", template="consult_reminder_1d", kind=MessageKind.CARE)
        assert gate.send(care).status is MessageStatus.SENT
        marketing, reminder = fake.accepted
    row = ledger(engine, "m")
    assert marketing["asm"] == {"group_id": 101} and reminder["asm"] == {"group_id": 202}
    assert marketing["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert marketing["content"][0]["value"] == row.body
    # Nothing about the patient outside the message itself: an id and the kind.
    assert marketing["custom_args"] == {"message_id": str(row.id)}
    assert marketing["categories"] == ["marketing"] and reminder["categories"] == ["care"]
    assert (row.channel, row.provider, row.provider_id) == ("email", "sendgrid", "sg-1")


def test_sendgrid_errors_are_classified(engine: Engine) -> None:
    seeded = seed_journey(engine, phone=None)
    with sendgrid_fake() as fake:
        fake.statuses = [503, 400]
        email = SendGridProvider(
            "SG.key",
            "hello@glow.example.com",
            marketing_group_id=None,
            transactional_group_id=None,
            host=fake.base_url,
        )
        gate = Messaging(engine, ChannelRouter({Channel.SMS: email, Channel.EMAIL: email}))
        with pytest.raises(ProviderError):
            gate.send(send_input(seeded, "k"))
        assert gate.send(send_input(seeded, "k")).status is MessageStatus.FAILED  # then 400
        assert fake.accepted == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_wave_of_10000_drains_at_the_allowed_rate_and_nothing_fails() -> None:
    clock = FakeClock()
    throttle = Throttle(10, max_wait=20, clock=clock, sleep=clock.sleep)
    for _ in range(10_000):
        throttle.acquire()
    assert clock.now == pytest.approx(999.9)  # 10 a second, none refused


def test_a_send_that_would_wait_too_long_is_queued_for_later_not_sent_not_failed(
    engine: Engine,
) -> None:
    seeded = seed_journey(engine)
    clock = FakeClock()
    # Other senders hold every slot of the next 20 s (no time passes: they are concurrent).
    throttle = Throttle(1, max_wait=20, clock=clock, sleep=lambda s: None)
    for _ in range(21):
        throttle.acquire()
    fake = TwilioFake()
    gate = Messaging(engine, twilio(fake, throttle))
    with pytest.raises(ProviderError) as raised:
        gate.send(send_input(seeded, "k"))
    assert (raised.value.code, raised.value.permanent) == ("throttled", False)
    assert ledger(engine, "k").status == "deferred" and fake.accepted == []
    clock.now = 30.0  # the activity's retry, later
    assert gate.send(send_input(seeded, "k")).status is MessageStatus.SENT


def test_status_callback_reconciles_a_send_whose_activity_died(engine: Engine) -> None:
    seeded = seed_journey(engine)
    fake = TwilioFake()
    gate = Messaging(engine, twilio(fake))
    with Session(engine) as s:  # as left by an attempt that died after Twilio took it
        s.add(
            Message(
                idempotency_key="k",
                practice_id=seeded.practice.id,
                patient_id=seeded.patient.id,
                journey_id=seeded.journey.id,
                direction="outbound",
                channel="sms",
                kind="marketing",
                template="nurture_1",
                status="sending",
                provider="twilio",
                provider_id="SMfromthecallback",
                created_at=datetime(2026, 12, 2, tzinfo=UTC),
            )
        )
        s.commit()
    result = gate.send(send_input(seeded, "k", at=MIDDAY))
    assert result.status is MessageStatus.SENT and fake.accepted == []


@pytest.mark.parametrize(("phone", "named"), [("+14155550123", True), (None, False)])
def test_treatment_names_go_by_sms_only_never_by_email(
    engine: Engine, phone: str | None, named: bool
) -> None:
    """SendGrid signs no BAA: even a practice that opted into treatment names gets the
    neutral phrase in email."""
    seeded = seed_journey(engine, phone=phone)
    with Session(engine) as s:
        s.add(
            PracticeLibrary(
                practice_id=seeded.practice.id,
                show_treatment_names=True,
                templates={
                    "nurture_1": {
                        "sms": "About {{ treatment }}. Reply STOP to opt out.",
                        "subject": "Hi",
                    }
                },
            )
        )
        s.commit()
    gate = Messaging(engine, OutboxProvider(engine))
    result = gate.send(send_input(seeded, "k", service="botox"))
    assert result.status is MessageStatus.SENT
    body = ledger(engine, "k").body or ""
    assert ("Botox" in body) is named and ("your treatment" in body) is not named


async def test_an_answer_twilio_could_not_take_is_sent_later_from_the_ledger(
    engine: Engine,
) -> None:
    """A HELP answer during a Twilio outage: deferred in the ledger, sent by the API's direct
    sender on its next round, once, still exempt from the window (it answers the patient)."""
    seeded = seed_journey(engine)
    fake = TwilioFake(errors=[(503, 20500)])
    gate = Messaging(engine, twilio(fake))
    answer = DirectSend(
        "twilio:SMhelp:help_reply",
        seeded.patient.id,
        MessageKind.CARE,
        NIGHT,
        template="help_reply",
        channel=Channel.SMS,
        respond=True,
    )
    with pytest.raises(ProviderError):
        gate.send_direct(answer)
    assert ledger(engine, answer.idempotency_key).status == "deferred"
    assert await send_due(gate, engine, now=NIGHT) == 1  # 05:00 in Los Angeles: still answered
    assert await send_due(gate, engine, now=NIGHT) == 0
    (sent,) = fake.accepted
    assert "Reply STOP to opt out" in sent["Body"]
    assert ledger(engine, answer.idempotency_key).status == "sent"
