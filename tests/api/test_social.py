"""Instagram/Facebook (Meta) and Google Business Profile messages: the handshakes, the
signatures (valid, tampered, missing), and messages normalized into inquiries and replies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from models.tables import Inquiry, Message, PatientHandle
from tests.api.conftest import Api, StackFactory, Tenant, eventually, sqlite_url

APP_SECRET = "meta-app-secret"
VERIFY = "meta-verify-token"
GOOGLE_TOKEN = "google-client-token"


@pytest.fixture(scope="module")
async def api(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with api_stack(
        sqlite_url(tmp_path_factory.mktemp("social")),
        meta_app_secret=APP_SECRET,
        meta_verify_token=VERIFY,
        google_messages_client_token=GOOGLE_TOKEN,
    ) as stack:
        yield stack


async def practice(api: Api) -> tuple[Tenant, dict[str, str]]:
    ids = {c: uuid.uuid4().hex[:16] for c in ("facebook", "instagram", "google")}
    accounts = [{"channel": c, "account_id": a} for c, a in ids.items()]
    return await api.create_practice(messaging_accounts=accounts), ids


def meta_body(obj: str, account: str, sender: str, text: str, **message: Any) -> bytes:
    return json.dumps(
        {
            "object": obj,
            "entry": [
                {
                    "id": account,
                    "time": 1764100000000,
                    "messaging": [
                        {
                            "sender": {"id": sender},
                            "recipient": {"id": account},
                            "timestamp": 1764100000000,
                            "message": {"mid": f"m_{uuid.uuid4().hex}", "text": text} | message,
                        }
                    ],
                }
            ],
        }
    ).encode()


def hub(payload: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


async def meta(api: Api, payload: bytes, signature: str | None = "") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature or hub(payload)
    return await api.http.post("/v1/webhooks/meta", content=payload, headers=headers)


def google_body(agent: str, conversation: str, text: str) -> bytes:
    return json.dumps(
        {
            "agent": f"brands/b1/agents/{agent}",
            "conversationId": conversation,
            "requestId": uuid.uuid4().hex,
            "message": {"messageId": uuid.uuid4().hex, "text": text},
            "context": {"userInfo": {"displayName": "Grace Hopper"}},
        }
    ).encode()


def goog(payload: bytes, token: str = GOOGLE_TOKEN) -> str:
    return base64.b64encode(hmac.new(token.encode(), payload, hashlib.sha512).digest()).decode()


async def google(api: Api, payload: bytes, signature: str | None = "") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Goog-Signature"] = signature or goog(payload)
    return await api.http.post("/v1/webhooks/google", content=payload, headers=headers)


def inquiries(api: Api, tenant: Tenant) -> list[Inquiry]:
    with Session(api.engine) as s:
        return list(s.exec(select(Inquiry).where(Inquiry.practice_id == uuid.UUID(tenant.id))))


async def test_meta_verify_token_handshake(api: Api) -> None:
    q = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    r = await api.http.get("/v1/webhooks/meta", params=q)
    assert (r.status_code, r.text) == (200, "1158201444")
    r = await api.http.get("/v1/webhooks/meta", params=q | {"hub.verify_token": "guess"})
    assert r.status_code == 403
    assert (await api.http.get("/v1/webhooks/meta")).status_code == 403


async def test_meta_signatures(api: Api) -> None:
    _, ids = await practice(api)
    payload = meta_body("page", ids["facebook"], "psid-1", "hello")
    assert (await meta(api, payload, signature=None)).status_code == 403
    assert (await meta(api, payload, signature=hub(payload, "other-secret"))).status_code == 403
    tampered = payload.replace(b"hello", b"hullo")
    assert (await meta(api, tampered, signature=hub(payload))).status_code == 403
    assert (await meta(api, payload, signature="sha1=abc")).status_code == 403
    assert (await meta(api, payload)).status_code == 200
    assert (await meta(api, b"{not json", signature=hub(b"{not json"))).status_code == 422


@pytest.mark.parametrize("obj,channel", [("instagram", "instagram"), ("page", "facebook")])
async def test_a_dm_is_an_inquiry_then_a_reply(api: Api, obj: str, channel: str) -> None:
    tenant, ids = await practice(api)
    sender = f"psid-{uuid.uuid4().hex[:8]}"
    assert (
        await meta(api, meta_body(obj, ids[channel], sender, "Price for lips?"))
    ).status_code == 200
    (inquiry,) = inquiries(api, tenant)
    assert (inquiry.channel, inquiry.source, inquiry.message) == ("dm", channel, "Price for lips?")
    journey_id = str(inquiry.journey_id)

    async def started() -> bool:
        return (await api.journey(tenant, journey_id))["status"] == "active"

    await eventually(started, "the DM's journey")
    # Our own message echoed back is not the patient talking.
    echo = meta_body(obj, ids[channel], sender, "Thanks!", is_echo=True)
    assert (await meta(api, echo)).status_code == 200
    assert (
        await meta(api, meta_body(obj, ids[channel], sender, "Is Friday ok?"))
    ).status_code == 200
    assert len(inquiries(api, tenant)) == 1

    async def paused() -> bool:
        return (await api.journey(tenant, journey_id))["status"] == "paused"

    await eventually(paused, "the reply to pause the journey")
    thread = await api.http.get(
        f"/v1/patients/{inquiry.patient_id}/conversation", headers=tenant.headers
    )
    bodies = [(i["direction"], i["channel"], i["body"]) for i in thread.json()["items"]]
    assert ("inbound", channel, "Price for lips?") in bodies
    assert ("inbound", channel, "Is Friday ok?") in bodies


async def test_google_verification_and_signatures(api: Api) -> None:
    verification = json.dumps({"secret": "s3cr3t", "clientToken": GOOGLE_TOKEN}).encode()
    r = await google(api, verification, signature=None)
    assert (r.status_code, r.text) == (200, "s3cr3t")
    wrong = json.dumps({"secret": "s3cr3t", "clientToken": "guess"}).encode()
    assert (await google(api, wrong, signature=None)).status_code == 403
    _, ids = await practice(api)
    payload = google_body(ids["google"], "conv-1", "hi")
    assert (await google(api, payload, signature=None)).status_code == 403
    assert (await google(api, payload.replace(b"hi", b"yo"), goog(payload))).status_code == 403
    assert (await google(api, payload, goog(payload, "other"))).status_code == 403
    assert (await google(api, payload)).status_code == 200


async def test_a_google_message_is_an_inquiry_with_the_first_name(api: Api) -> None:
    tenant, ids = await practice(api)
    conversation = f"conv-{uuid.uuid4().hex}"
    r = await google(api, google_body(ids["google"], conversation, "Do you take walk-ins?"))
    assert r.status_code == 200
    (inquiry,) = inquiries(api, tenant)
    assert (inquiry.channel, inquiry.source) == ("dm", "google")
    with Session(api.engine) as s:
        (handle,) = s.exec(select(PatientHandle).where(PatientHandle.handle == conversation))
        inbound = s.exec(select(Message).where(Message.patient_id == handle.patient_id)).all()
    assert handle.channel == "google"
    assert [m.body for m in inbound if m.direction == "inbound"] == ["Do you take walk-ins?"]
    r = await api.http.get(f"/v1/patients/{handle.patient_id}/export", headers=tenant.headers)
    assert r.json()["patient"]["first_name"] == "Grace"


async def test_messages_for_unknown_accounts_are_ignored(api: Api) -> None:
    assert (await meta(api, meta_body("page", "no-such-page", "psid", "hi"))).status_code == 200
    assert (await google(api, google_body("no-such-agent", "c", "hi"))).status_code == 200


async def test_erasure_forgets_the_platform_handle(api: Api) -> None:
    tenant, ids = await practice(api)
    conversation = f"conv-{uuid.uuid4().hex}"
    assert (await google(api, google_body(ids["google"], conversation, "hi"))).status_code == 200
    (inquiry,) = inquiries(api, tenant)
    r = await api.http.post(f"/v1/patients/{inquiry.patient_id}/erase", headers=tenant.headers)
    assert r.status_code == 202, r.text
    with Session(api.engine) as s:
        assert s.exec(select(PatientHandle).where(PatientHandle.handle == conversation)).all() == []
