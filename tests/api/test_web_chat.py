"""The public web chat: the widget script, the inquiry endpoint keyed by a practice's public key,
proof of consent in the exact words shown, rate limits and bot protection."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from models.tables import ConsentRecord, Inquiry, OutboxMessage
from tests.api.conftest import Api, StackFactory, eventually, sqlite_url

WORDING = "I agree to receive texts from Glow Aesthetics. Msg & data rates may apply."


@pytest.fixture(scope="module")
async def api(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with api_stack(
        sqlite_url(tmp_path_factory.mktemp("webchat")), web_chat_rate_per_ip_per_minute=1000
    ) as stack:
        yield stack


async def public_key(api: Api) -> str:
    r = await api.http.post(
        "/v1/practices",
        headers=api.admin,
        json={
            "name": "Glow",
            "timezone": "America/New_York",
            "state": "NY",
            "booking_url": "https://book.example.com/glow",
        },
    )
    assert r.status_code == 201
    key: str = r.json()["public_key"]
    assert key.startswith("pk_")
    return key


def form(**overrides: Any) -> dict[str, Any]:
    return {
        "first_name": "Ada",
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "message": "Do you do laser hair removal?",
        "interest": "injectables",
        "elapsed_ms": 12_000,
        "consent": {"sms": False, "email": True, "wording": WORDING},
    } | overrides


async def post(api: Api, key: str, body: dict[str, Any]) -> httpx.Response:
    return await api.http.post(f"/v1/web-chat/{key}/inquiries", json=body)


def inquiries(api: Api) -> list[Inquiry]:
    with Session(api.engine) as s:
        return list(s.exec(select(Inquiry).where(Inquiry.channel == "chat")).all())


async def test_widget_script_is_served(api: Api) -> None:
    r = await api.http.get("/v1/web-chat/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert "data-practice" in r.text and 'name="website"' in r.text and "elapsed_ms" in r.text


async def test_a_chat_inquiry_journeys_and_keeps_the_consent_wording(api: Api) -> None:
    key = await public_key(api)
    before = len(inquiries(api))
    r = await post(api, key, form())
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "received"}  # nothing about the patient to anyone
    (inquiry,) = inquiries(api)[before:]
    with Session(api.engine) as s:
        (proof,) = s.exec(
            select(ConsentRecord).where(ConsentRecord.patient_id == inquiry.patient_id)
        ).all()
    assert (proof.channel, proof.granted, proof.source, proof.wording) == (
        "email",
        True,
        "inquiry:chat",
        WORDING,
    )
    assert proof.evidence == str(inquiry.id)

    async def started() -> bool:
        with Session(api.engine) as s:
            row = s.get(Inquiry, inquiry.id)
            return row is not None and row.status == "journey_started"

    await eventually(started, "the chat inquiry's journey")


async def test_a_double_submit_is_one_inquiry(api: Api) -> None:
    key = await public_key(api)
    body = form()
    before = len(inquiries(api))
    assert (await post(api, key, body)).status_code == 202
    assert (await post(api, key, body | {"elapsed_ms": 15_000})).status_code == 202
    assert len(inquiries(api)) == before + 1


@pytest.mark.parametrize(
    "bot", [{"website": "http://spam.example.com"}, {"elapsed_ms": 400}], ids=["honeypot", "fast"]
)
async def test_bots_get_the_same_answer_and_store_nothing(api: Api, bot: dict[str, Any]) -> None:
    key = await public_key(api)
    before = len(inquiries(api))
    r = await post(api, key, form(**bot))
    assert r.status_code == 202 and r.json() == {"status": "received"}
    assert len(inquiries(api)) == before


async def test_field_level_errors_and_unknown_keys(api: Api) -> None:
    key = await public_key(api)
    r = await post(api, key, form(email="not-an-email"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "email"]
    assert "not-an-email" not in r.text  # never echo what may be PHI
    r = await post(api, key, form(interest="tattoo removal"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "interest"]
    r = await post(api, key, {k: v for k, v in form().items() if k != "consent"})
    assert r.status_code == 422
    assert (await post(api, "pk_unknown", form())).status_code == 404
    assert (await post(api, "bad key!", form())).status_code in (404, 422)


async def test_rate_limited_per_client_ip(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    async with api_stack(
        sqlite_url(tmp_path_factory.mktemp("webchat-limit")),
        worker=False,
        web_chat_rate_per_ip_per_minute=2,
    ) as limited:
        key = await public_key(limited)
        codes = [(await post(limited, key, form())).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        r = await post(limited, key, form())
        assert int(r.headers["Retry-After"]) >= 1


async def test_a_new_sms_opt_in_is_confirmed_at_once(api: Api) -> None:
    key = await public_key(api)
    phone = "+13125550188"
    body = form(phone=phone, email=None, consent={"sms": True, "email": False, "wording": WORDING})
    assert (await post(api, key, body)).status_code == 202
    with Session(api.engine) as s:
        texts = [m.body for m in s.exec(select(OutboxMessage).where(OutboxMessage.to == phone))]
    assert any("Reply HELP for help, STOP to opt out" in t for t in texts)
