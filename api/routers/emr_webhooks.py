"""POST /v1/webhooks/emr/{vendor}/{integration_id}: an EMR tells us something happened.

Verified first (HMAC-SHA256 of the raw body with the integration's secret: 401 otherwise, and a
forged body never reaches a parser), then parsed into normalized events, then committed (vendor
event ids deduplicate; journey events are written as pending rows) before the answer. Temporal is
only tried after the commit, bounded by the start timeout; if it is down the answer is the same
and the relay delivers later. Nothing is lost, nothing happens twice."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, HTTPException, Request, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, SessionDep, SettingsDep, TemporalDep
from api.errors import field_error
from api.event_delivery import deliver, load_pending
from api.integration_schemas import WebhookReceipt
from api.journey_starter import start_journey
from integrations import secrets as sealing
from integrations import signatures
from integrations.adapters import parse_webhook
from integrations.ingest import IngestResult, ingest_counted
from integrations.model import WEBHOOK_VENDORS, NormalizedEvent, PayloadError, Vendor
from models.tables import Integration, Practice

router = APIRouter(prefix="/v1/webhooks/emr", tags=["webhooks"])


def _forged() -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail="signature missing or invalid")


def _apply(
    session: Session, integration: Integration, events: list[NormalizedEvent]
) -> IngestResult:
    return ingest_counted(session, integration, events, "webhook")


@router.post(
    "/{vendor}/{integration_id}",
    response_model=WebhookReceipt,
    responses={
        401: {"description": "signature missing or invalid"},
        404: {"description": "no such integration for this vendor"},
        422: {"description": "payload not readable"},
    },
)
async def receive(
    vendor: Vendor,
    integration_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> WebhookReceipt:
    raw = await request.body()
    integration = await run_in_threadpool(session.get, Integration, integration_id)
    if (
        integration is None
        or integration.vendor != vendor.value
        or integration.status != "active"
        or vendor not in WEBHOOK_VENDORS
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="integration not found")
    try:
        creds = sealing.unseal(settings.payload_keys, str(integration.id), integration.credentials)
    except sealing.CredentialsUnavailable:
        raise _forged() from None
    secret = creds.get("webhook_secret")
    if not secret or not signatures.verify(secret, raw, request.headers.get(signatures.HEADER)):
        raise _forged()
    try:
        body = json.loads(raw)
        practice = await run_in_threadpool(session.get, Practice, integration.practice_id)
        assert practice is not None
        events = parse_webhook(vendor, body, practice.timezone)
    except PayloadError as exc:
        raise field_error("body", str(exc)) from None
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError):
        # Not JSON, or JSON of a shape a parser tripped over: the sender's problem, never a 500
        # (and the message says nothing of the content).
        raise field_error("body", "not valid JSON in this vendor's shape") from None
    result = await run_in_threadpool(_apply, session, integration, events)
    client = temporal.client
    if client is not None:
        for plan in result.plans:
            await start_journey(client, settings, engine, plan)
        if result.journey_ids:
            pending = await run_in_threadpool(load_pending, engine, journey_ids=result.journey_ids)
            await deliver(client, settings, engine, pending)
    return WebhookReceipt(
        received=len(events),
        applied=result.outcomes.count("applied"),
        duplicates=result.duplicates,
    )
