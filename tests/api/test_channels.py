"""Channels end to end over the real app, the dev server and the worker (outbox provider):
Twilio webhooks (inbound SMS with keywords, status callbacks, missed calls), SendGrid's signed
Event Webhook, the conversation thread and staff replies. Signatures: valid, tampered, missing."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session, col, select
from twilio.request_validator import RequestValidator

from activities.send_window import next_allowed
from api.followups import send_due
from models.tables import (
    ConsentRecord,
    Inquiry,
    Journey,
    Message,
    OutboxMessage,
    Patient,
    StaffTask,
)
from tests.api.conftest import Api, StackFactory, Tenant, eventually, sqlite_url
from tests.phi import EMAIL, FIRST, LAST, assert_no_phi

TOKEN = "twilio-auth-token-for-tests"
BASE = "https://api.glow.example.com"
SG_KEY = ec.generate_private_key(ec.SECP256R1())
SG_PUBLIC = base64.b64encode(
    SG_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
MARKETING_GROUP = 4242
_numbers = itertools.count(100)


def number() -> str:
    """A fresh 212 number (patients and practices); fixed numbers in the tests use 312."""
    return f"+1212555{next(_numbers):04d}"


@pytest.fixture(scope="module")
async def api(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with api_stack(
        sqlite_url(tmp_path_factory.mktemp("channels")),
        twilio_auth_token=TOKEN,
        public_base_url=BASE,
        sendgrid_webhook_public_key=SG_PUBLIC,
        sendgrid_marketing_group_id=MARKETING_GROUP,
    ) as stack:
        yield stack


async def practice(api: Api) -> tuple[Tenant, str]:
    sms_number = number()
    tenant = await api.create_practice(sms_number=sms_number, help_text="Call us at 212-555-0100.")
    return tenant, sms_number


def sign(path: str, params: dict[str, str]) -> str:
    return str(RequestValidator(TOKEN).compute_signature(BASE + path, params))


async def twilio(
    api: Api, path: str, params: dict[str, str], signature: str | None = ""
) -> httpx.Response:
    """POST as Twilio does. signature="" signs correctly; None sends none; else sends that."""
    headers = {}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature or sign(path, params)
    return await api.http.post(path, data=params, headers=headers)


async def text(api: Api, to: str, sender: str, body: str) -> httpx.Response:
    params = {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "AccountSid": "AC" + "1" * 32,
        "From": sender,
        "To": to,
        "Body": body,
    }
    r = await twilio(api, "/v1/webhooks/twilio/sms", params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    return r


def rows(api: Api, table: Any, *where: Any) -> list[Any]:
    with Session(api.engine) as s:
        return list(s.exec(select(table).where(*where)).all())


def outbox_to(api: Api, phone: str) -> list[OutboxMessage]:
    with Session(api.engine) as s:
        return list(
            s.exec(
                select(OutboxMessage)
                .where(OutboxMessage.to == phone)
                .order_by(col(OutboxMessage.handed_at))
            ).all()
        )


def patient(api: Api, patient_id: str) -> Patient:
    return api.get(Patient, patient_id)


async def lead(api: Api, tenant: Tenant, phone: str, **kw: Any) -> dict[str, Any]:
    result = await api.lead(tenant, phone=phone, email=None, **kw)
    # Wait for the journey's first reply: the journey is live and the ledger has started.
    await eventually(lambda: _sent(api, result["patient_id"]), "the first reply")
    return result


async def _sent(api: Api, patient_id: str) -> bool:
    return bool(
        rows(api, Message, Message.patient_id == uuid.UUID(patient_id), Message.status == "sent")
    )


# ---- signatures ------------------------------------------------------------------------------

TWILIO_PATHS = [
    "/v1/webhooks/twilio/sms",
    "/v1/webhooks/twilio/status",
    "/v1/webhooks/twilio/voice-status",
]


@pytest.mark.parametrize("path", TWILIO_PATHS)
async def test_twilio_webhooks_refuse_missing_and_tampered_signatures(api: Api, path: str) -> None:
    params = {"MessageSid": "SM1", "CallSid": "CA1", "From": "+13125550100", "To": "+13125550101"}
    assert (await twilio(api, path, params, signature=None)).status_code == 403
    assert (await twilio(api, path, params, signature="bm9wZQ==")).status_code == 403
    # Signed, then changed on the way: the signature no longer matches.
    good = sign(path, params)
    tampered = params | {"From": "+13125550199"}
    assert (await twilio(api, path, tampered, signature=good)).status_code == 403
    # Signed for another host (PUBLIC_BASE_URL is what counts, not the Host header).
    other = str(RequestValidator(TOKEN).compute_signature("http://api" + path, params))
    assert (await twilio(api, path, params, signature=other)).status_code == 403
    # An API key is no substitute for the signature.
    r = await api.http.post(path, data=params, headers=api.admin)
    assert r.status_code == 403
    assert (await twilio(api, path, params)).status_code in (200, 204)


def sendgrid_headers(payload: bytes, timestamp: str = "1764100000") -> dict[str, str]:
    signature = SG_KEY.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


async def sendgrid(api: Api, events: list[dict[str, Any]]) -> httpx.Response:
    payload = json.dumps(events).encode()
    return await api.http.post(
        "/v1/webhooks/sendgrid/events", content=payload, headers=sendgrid_headers(payload)
    )


async def test_sendgrid_webhook_refuses_missing_and_tampered_signatures(api: Api) -> None:
    path = "/v1/webhooks/sendgrid/events"
    payload = json.dumps([{"event": "delivered", "message_id": str(uuid.uuid4())}]).encode()
    headers = sendgrid_headers(payload)
    assert (await api.http.post(path, content=payload)).status_code == 403
    tampered = payload.replace(b"delivered", b"bounce")
    assert (await api.http.post(path, content=tampered, headers=headers)).status_code == 403
    replayed = headers | {"X-Twilio-Email-Event-Webhook-Timestamp": "1764100001"}
    assert (await api.http.post(path, content=payload, headers=replayed)).status_code == 403
    garbage = headers | {"X-Twilio-Email-Event-Webhook-Signature": "not base64!"}
    assert (await api.http.post(path, content=payload, headers=garbage)).status_code == 403
    assert (await api.http.post(path, content=payload, headers=headers)).status_code == 204
    # Signed but not an array of events: a 422, not a 500.
    odd = b'{"event": "delivered"}'
    assert (
        await api.http.post(path, content=odd, headers=sendgrid_headers(odd))
    ).status_code == 422


# ---- inbound SMS -----------------------------------------------------------------------------


async def test_a_reply_pauses_the_journeys_and_raises_a_staff_task(api: Api) -> None:
    tenant, line = await practice(api)
    phone = number()
    result = await lead(api, tenant, phone)
    await text(api, line, phone, "Can I come Saturday at 3?")
    journey_id = result["journey_id"]

    async def paused() -> bool:
        return (await api.journey(tenant, journey_id))["status"] == "paused"

    await eventually(paused, "the journey to pause on the reply")
    tasks = rows(api, StaffTask, StaffTask.journey_id == uuid.UUID(journey_id))
    assert "patient_replied" in {t.kind for t in tasks}
    inbound = rows(
        api,
        Message,
        Message.direction == "inbound",
        Message.patient_id == uuid.UUID(result["patient_id"]),
    )
    assert [m.body for m in inbound] == ["Can I come Saturday at 3?"]


async def test_stop_then_start_then_help(api: Api) -> None:
    tenant, line = await practice(api)
    phone = number()
    result = await lead(api, tenant, phone)
    pid = result["patient_id"]

    await text(api, line, phone, "  Stop. ")
    assert patient(api, pid).sms_suppressed
    confirmation = outbox_to(api, phone)[-1]
    assert "unsubscribed" in confirmation.body and "START" in confirmation.body

    async def ended() -> bool:
        return (await api.journey(tenant, result["journey_id"]))["status"] == "opted_out"

    await eventually(ended, "the sms-only journey to end as opted out")
    # Texting after STOP: nothing automated goes out any more (only what they ask for).
    staff = await api.http.post(
        f"/v1/patients/{pid}/messages", headers=tenant.headers, json={"body": "Hello?"}
    )
    assert staff.status_code == 202 and staff.json()["status"] == "suppressed"

    await text(api, line, phone, "HELP")  # answered even while opted out (CTIA)
    assert "Call us at 212-555-0100." in outbox_to(api, phone)[-1].body

    await text(api, line, phone, "START")
    p = patient(api, pid)
    assert not p.sms_suppressed and p.sms_consent
    assert "subscribed" in outbox_to(api, phone)[-1].body
    assert "Msg & data rates may apply" in outbox_to(api, phone)[-1].body

    await text(api, line, phone, "help")
    help_reply = outbox_to(api, phone)[-1].body
    assert "Call us at 212-555-0100." in help_reply and "STOP" in help_reply

    proof = rows(api, ConsentRecord, ConsentRecord.patient_id == uuid.UUID(pid))
    assert [(c.granted, c.source, c.wording) for c in proof] == [
        (True, "inquiry:form", None),
        (False, "sms_keyword", "STOP"),
        (True, "sms_keyword", "START"),
    ]


@pytest.mark.parametrize(
    "word", ["UNSUBSCRIBE", "end", "Quit", "STOPALL", "revoke", "OPTOUT", "cancel"]
)
async def test_every_stop_word_opts_out(api: Api, word: str) -> None:
    tenant, line = await practice(api)
    phone = number()
    result = await api.lead(tenant, phone=phone, email=None)
    await text(api, line, phone, word)
    assert patient(api, result["patient_id"]).sms_suppressed


async def test_a_text_from_an_unknown_number_is_a_new_inquiry(api: Api) -> None:
    tenant, line = await practice(api)
    phone = number()
    await text(api, line, phone, "Hi, do you do lip filler?")
    (inquiry,) = rows(api, Inquiry, Inquiry.practice_id == uuid.UUID(tenant.id))
    assert (inquiry.channel, inquiry.message) == ("sms", "Hi, do you do lip filler?")

    async def replied() -> list[OutboxMessage]:
        return outbox_to(api, phone)

    (reply,) = await eventually(replied, "the journey's first reply")
    assert "Glow Aesthetics" in reply.body
    # A STOP from a stranger is remembered too.
    stranger = number()
    await text(api, line, stranger, "STOP")
    (p,) = rows(api, Patient, Patient.phone == stranger)
    assert p.sms_suppressed


async def test_text_to_a_number_of_no_practice_is_ignored(api: Api) -> None:
    await text(api, "+13125559999", number(), "hello")


async def test_twilio_retrying_a_webhook_changes_nothing(api: Api) -> None:
    tenant, line = await practice(api)
    phone = number()
    params = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": phone, "To": line, "Body": "Hi!"}
    for _ in range(2):
        r = await twilio(api, "/v1/webhooks/twilio/sms", params)
        assert r.status_code == 200
    assert len(rows(api, Inquiry, Inquiry.practice_id == uuid.UUID(tenant.id))) == 1


# ---- missed calls ----------------------------------------------------------------------------


async def call(api: Api, to: str, caller: str, status: str) -> None:
    params = {"CallSid": f"CA{uuid.uuid4().hex}", "From": caller, "To": to, "CallStatus": status}
    r = await twilio(api, "/v1/webhooks/twilio/voice-status", params)
    assert r.status_code == 204, r.text


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed", "canceled"])
async def test_a_missed_call_from_a_new_caller_is_texted_back_and_journeyed(
    api: Api, status: str
) -> None:
    tenant, line = await practice(api)
    caller = number()
    await call(api, line, caller, status)
    (inquiry,) = rows(api, Inquiry, Inquiry.practice_id == uuid.UUID(tenant.id))
    assert inquiry.channel == "missed_call"

    async def texted() -> list[OutboxMessage]:
        return outbox_to(api, caller)

    await eventually(texted, "the text-back")


async def test_a_missed_call_from_a_patient_on_a_journey(api: Api) -> None:
    tenant, line = await practice(api)
    phone = number()
    result = await lead(api, tenant, phone)
    await call(api, line, phone, "no-answer")
    assert "sorry we missed your call" in outbox_to(api, phone)[-1].body
    journeys = rows(api, Journey, Journey.patient_id == uuid.UUID(result["patient_id"]))
    assert len(journeys) == 1  # the same journey, told of the call

    async def task() -> bool:
        tasks = rows(api, StaffTask, StaffTask.journey_id == journeys[0].id)
        return "repeat_inquiry" in {t.kind for t in tasks}

    await eventually(task, "a staff task for the call")


async def test_an_answered_call_texts_nobody(api: Api) -> None:
    tenant, line = await practice(api)
    caller = number()
    await call(api, line, caller, "completed")
    assert rows(api, Inquiry, Inquiry.practice_id == uuid.UUID(tenant.id)) == []
    assert outbox_to(api, caller) == []


# ---- provider events -------------------------------------------------------------------------


async def status_callback(
    api: Api, message_id: str, sid: str, status: str, error: str | None = None
) -> None:
    path = f"/v1/webhooks/twilio/status?message_id={message_id}"
    params = {"MessageSid": sid, "MessageStatus": status} | ({"ErrorCode": error} if error else {})
    r = await twilio(api, path, params)
    assert r.status_code == 204, r.text


async def test_status_callbacks_only_move_forward(api: Api) -> None:
    tenant, _ = await practice(api)
    phone = number()
    result = await lead(api, tenant, phone)
    (row,) = rows(api, Message, Message.patient_id == uuid.UUID(result["patient_id"]))
    await status_callback(api, str(row.id), "SMx", "delivered")
    await status_callback(api, str(row.id), "SMx", "sent")  # late, out of order
    await status_callback(api, str(row.id), "SMx", "failed", "30003")
    assert api.get(Message, row.id).status == "delivered"


async def test_a_carrier_opt_out_in_a_callback_suppresses(api: Api) -> None:
    tenant, _ = await practice(api)
    phone = number()
    result = await lead(api, tenant, phone)
    (row,) = rows(api, Message, Message.patient_id == uuid.UUID(result["patient_id"]))
    await status_callback(api, str(row.id), "SMy", "failed", "21610")
    assert api.get(Message, row.id).status == "failed"
    assert patient(api, result["patient_id"]).sms_suppressed


async def test_sendgrid_events_update_the_ledger_and_suppression(api: Api) -> None:
    tenant, _ = await practice(api)
    result = await api.lead(tenant, phone=None, email=f"{uuid.uuid4().hex[:8]}@example.com")
    pid = result["patient_id"]

    async def first() -> list[Message]:
        return rows(api, Message, Message.patient_id == uuid.UUID(pid), Message.status == "sent")

    (row,) = await eventually(first, "the first email")
    mid = str(row.id)
    assert (await sendgrid(api, [{"event": "delivered", "message_id": mid}])).status_code == 204
    assert api.get(Message, row.id).status == "delivered"
    # Unsubscribing from the marketing group drops marketing consent only.
    await sendgrid(
        api, [{"event": "group_unsubscribe", "message_id": mid, "asm_group_id": MARKETING_GROUP}]
    )
    p = patient(api, pid)
    assert not p.email_consent and not p.email_suppressed
    # A spam report suppresses email and ends the (email-only) journey.
    await sendgrid(api, [{"event": "spamreport", "message_id": mid, "sg_event_id": "e1"}])
    assert patient(api, pid).email_suppressed

    async def ended() -> bool:
        return (await api.journey(tenant, result["journey_id"]))["status"] == "opted_out"

    await eventually(ended, "the email-only journey to end")


async def test_a_hard_bounce_fails_the_message_and_suppresses_the_address(api: Api) -> None:
    tenant, _ = await practice(api)
    result = await api.lead(tenant, phone=None, email=f"{uuid.uuid4().hex[:8]}@example.com")

    async def first() -> list[Message]:
        return rows(
            api,
            Message,
            Message.patient_id == uuid.UUID(result["patient_id"]),
            Message.status == "sent",
        )

    (row,) = await eventually(first, "the first email")
    events = [{"event": "bounce", "type": "bounce", "message_id": str(row.id)}]
    assert (await sendgrid(api, events)).status_code == 204
    assert api.get(Message, row.id).status == "failed"
    assert patient(api, result["patient_id"]).email_suppressed


# ---- one conversation, staff replies ---------------------------------------------------------


async def test_the_conversation_is_one_thread_and_staff_reply_through_the_gate(api: Api) -> None:
    tenant, line = await practice(api)
    phone = number()
    result = await lead(api, tenant, phone, message="Do you have Saturday openings?")
    pid = result["patient_id"]
    await text(api, line, phone, "Also, how long does it last?")
    r = await api.http.post(
        f"/v1/patients/{pid}/messages",
        headers=tenant.headers,
        json={"body": "About 3-4 months. Saturday 10am works!", "id": "reply-1"},
    )
    assert r.status_code == 202, r.text
    assert (r.json()["status"], r.json()["channel"]) == ("sent", "sms")
    again = await api.http.post(
        f"/v1/patients/{pid}/messages",
        headers=tenant.headers,
        json={"body": "About 3-4 months. Saturday 10am works!", "id": "reply-1"},
    )
    assert again.json()["message_id"] == r.json()["message_id"]
    assert [m.body for m in outbox_to(api, phone)].count(
        "About 3-4 months. Saturday 10am works!"
    ) == 1

    thread = await api.http.get(f"/v1/patients/{pid}/conversation", headers=tenant.headers)
    assert thread.status_code == 200, thread.text
    items = thread.json()["items"]
    assert [(i["direction"], i["channel"], i["source"]) for i in items] == [
        ("inbound", "form", "inquiry"),
        ("outbound", "sms", "message"),
        ("inbound", "sms", "message"),
        ("outbound", "sms", "message"),
    ]
    assert items[0]["body"] == "Do you have Saturday openings?"
    assert items[3]["body"] == "About 3-4 months. Saturday 10am works!"


NIGHT_ZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/Anchorage", "Pacific/Honolulu", "Europe/London", "Europe/Berlin", "Asia/Dubai",
    "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney",
)  # fmt: skip


def _zone_at_night() -> str:
    """A zone where it is night now, an hour clear of the 8am-9pm window's edges (every
    quarter hour of the day has one), so the test does not depend on when it runs."""
    now = datetime.now(UTC)
    for zone in NIGHT_ZONES:
        hour = now.astimezone(ZoneInfo(zone)).hour
        if hour < 7 or hour >= 22:
            assert next_allowed(now, zone, None) is not None
            return zone
    raise AssertionError("some zone is at night")


async def test_a_staff_message_out_of_the_blue_waits_for_the_window(api: Api) -> None:
    tenant, _ = await practice(api)
    phone = number()
    result = await api.lead(tenant, phone=phone, email=None, timezone=_zone_at_night())
    r = await api.http.post(
        f"/v1/patients/{result['patient_id']}/messages",
        headers=tenant.headers,
        json={"body": "Following up on your visit", "id": "late"},
    )
    assert r.status_code == 202, r.text
    deferred = r.json()
    assert deferred["status"] == "deferred" and deferred["reason"] == "outside the send window"
    assert "Following up on your visit" not in [m.body for m in outbox_to(api, phone)]
    # It keeps its place: when the window opens the API's direct sender sends it, once.
    opens = datetime.fromisoformat(deferred["retry_at"])
    messaging = api.app.state.messaging
    assert await send_due(messaging, api.engine, now=opens - timedelta(minutes=1)) == 0
    assert await send_due(messaging, api.engine, now=opens) == 1
    assert await send_due(messaging, api.engine, now=opens + timedelta(hours=1)) == 0
    bodies = [m.body for m in outbox_to(api, phone)]
    assert bodies.count("Following up on your visit") == 1
    row = api.get(Message, deferred["message_id"])
    assert (row.status, row.sent_at) == ("sent", opens)


async def test_staff_reply_validation(api: Api) -> None:
    tenant, _ = await practice(api)
    result = await api.lead(tenant, phone=number(), email=None)
    url = f"/v1/patients/{result['patient_id']}/messages"
    for body in ({}, {"body": ""}, {"body": "x" * 1601}, {"body": "hi", "channel": "fax"}):
        assert (await api.http.post(url, headers=tenant.headers, json=body)).status_code == 422
    other, _ = await practice(api)
    r = await api.http.post(url, headers=other.headers, json={"body": "hi"})
    assert r.status_code == 404


async def test_no_phi_in_logs_or_answers_of_the_webhooks(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, line = await practice(api)
    phone = "+14155550199"
    await text(api, line, phone, f"Hi, {FIRST} {LAST} here, {EMAIL}")
    await eventually(lambda: _outbox_async(api, phone), "the reply to a new texter")
    for body in ("STOP", "START", "HELP", f"{FIRST} again"):
        await text(api, line, phone, body)
    await call(api, line, phone, "busy")
    r = await twilio(api, "/v1/webhooks/twilio/sms", {"From": phone, "Body": FIRST}, "bad")
    assert r.status_code == 403
    assert_no_phi("the 403 answer", r.text)
    records = [r for r in caplog.records if r.levelno >= logging.DEBUG]
    assert records
    lines = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)
    assert_no_phi("the log lines", lines)


async def _outbox_async(api: Api, phone: str) -> list[OutboxMessage]:
    return outbox_to(api, phone)


async def test_a_text_with_nul_characters_is_stored_not_refused(api: Api) -> None:
    tenant, line = await practice(api)
    phone = number()
    await text(api, line, phone, "Hi\x00 there")
    (inquiry,) = rows(api, Inquiry, Inquiry.practice_id == uuid.UUID(tenant.id))
    assert inquiry.message == "Hi there"
