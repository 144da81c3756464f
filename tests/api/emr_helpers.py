"""Shared by the EMR API tests: integrations, signed webhooks, and the side-by-side check that a
vendor's events move a journey exactly as the same events through our API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlmodel import Session, select

from integrations import signatures
from models.tables import JourneyEventRow
from tests.api.conftest import Api, Tenant, eventually

PHONE_A = "+12125550123"  # the vendor fixtures' patient
PHONE_B = "+12125550188"  # a twin driven through our own API


async def create_integration(api: Api, tenant: Tenant, **body: Any) -> dict[str, Any]:
    r = await api.http.post(
        f"/v1/practices/{tenant.id}/integrations", headers=tenant.headers, json=body
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def post_webhook(
    api: Api, integration: dict[str, Any], raw: bytes, signature: str | None = None
) -> httpx.Response:
    secret = integration["webhook_secret"]
    headers = {"Content-Type": "application/json"}
    headers["X-Signature"] = signature or signatures.sign(secret, raw)
    return await api.http.post(integration["webhook_path"], content=raw, headers=headers)


async def twins(api: Api, tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two leads in speed_to_lead: A (the vendor's patient) and B (ours to drive by API)."""
    a = await api.lead(tenant, phone=PHONE_A, email=None)
    b = await api.lead(tenant, phone=PHONE_B, email=None)
    for lead in (a, b):
        journey_id: str = lead["journey_id"]

        async def started(journey_id: str = journey_id) -> bool:
            return await _stage_is(api, tenant, journey_id, "speed_to_lead")

        await eventually(started, "speed_to_lead")
    return a, b


async def _stage_is(api: Api, tenant: Tenant, journey_id: str, stage: str) -> bool:
    return bool((await api.journey(tenant, journey_id))["stage"] == stage)


def projection(journey: dict[str, Any]) -> tuple[Any, ...]:
    """Everything the journey shows, minus its ids and wall-clock timestamps."""
    return (
        journey["stage"],
        journey["status"],
        journey["cycle"],
        journey["next_action"],
        journey["next_action_at"],
        [
            (h["from_stage"], h["to_stage"], h["status"], h["reason"])
            for h in journey["stage_history"]
        ],
    )


def delivered_events(api: Api, journey_id: str) -> list[tuple[Any, ...]]:
    """The journey's events as delivered: everything but their ids."""
    with Session(api.engine) as session:
        rows = session.exec(
            select(JourneyEventRow)
            .where(JourneyEventRow.journey_id == uuid.UUID(journey_id))
            .order_by(JourneyEventRow.received_at)  # type: ignore[arg-type]
        ).all()
    return [
        (
            r.type,
            r.status,
            *(r.payload.get(k) for k in ("at", "appointment_at", "service", "amount")),
        )
        for r in rows
    ]


async def same_journey(
    api: Api, tenant: Tenant, a_id: str, b_id: str, events: int
) -> tuple[Any, ...]:
    """Waits until both journeys have `events` delivered events and look the same."""

    async def probe() -> tuple[Any, ...] | None:
        da, db = delivered_events(api, a_id), delivered_events(api, b_id)
        if len(da) != events or da != db or any(e[1] != "delivered" for e in da):
            return None
        ja, jb = await api.journey(tenant, a_id), await api.journey(tenant, b_id)
        pa, pb = projection(ja), projection(jb)
        return pa if pa == pb else None

    try:
        return await eventually(probe, f"vendor and API journeys alike after {events} events")
    except AssertionError:
        da, db = delivered_events(api, a_id), delivered_events(api, b_id)
        ja, jb = await api.journey(tenant, a_id), await api.journey(tenant, b_id)
        raise AssertionError(f"{da} vs {db}\n{projection(ja)}\n{projection(jb)}") from None
