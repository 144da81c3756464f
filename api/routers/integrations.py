"""EMR integrations of a practice: create (credentials sealed; the poll Schedule registered),
list, read (last poll, cursor, errors), test the connection, delete (the Schedule removed)."""

from __future__ import annotations

import secrets as pysecrets
import uuid
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, HTTPException, status
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.audit import Action, add_audit, audit_now
from api.authz import Permission
from api.deps import EngineDep, Principal, SessionDep, SettingsDep, TemporalDep, require
from api.errors import field_error, not_found
from api.integration_schemas import (
    DEFAULT_POLL_SECONDS,
    ConnectionTest,
    IntegrationCreate,
    IntegrationCreated,
    IntegrationOut,
    IntegrationPage,
    IntegrationUpdate,
    missing_credentials,
)
from integrations import adapters, schedules
from integrations import secrets as sealing
from integrations.model import WEBHOOK_VENDORS, Vendor
from models.tables import Integration, utcnow
from runtime.codec import EncryptionKey

router = APIRouter(tags=["integrations"])

Manager = Annotated[Principal, Depends(require(Permission.INTEGRATION_MANAGE))]
TEST_TIMEOUT_S = 10.0


def integration_out(row: Integration, credential_names: list[str]) -> IntegrationOut:
    webhook = (
        f"/v1/webhooks/emr/{row.vendor}/{row.id}" if Vendor(row.vendor) in WEBHOOK_VENDORS else None
    )
    return IntegrationOut(
        **{k: getattr(row, k) for k in IntegrationOut.model_fields if hasattr(row, k)},
        webhook_path=webhook,
        credential_names=credential_names,
    )


def _names(settings_keys: list[EncryptionKey], row: Integration) -> list[str]:
    try:
        creds = sealing.unseal(settings_keys, str(row.id), row.credentials)
    except sealing.CredentialsUnavailable:
        return []
    return sorted(k for k in creds if k != "webhook_secret")


def _own(session: Session, principal: Principal, integration_id: uuid.UUID) -> Integration:
    row = session.get(Integration, integration_id)
    if row is None or row.practice_id != principal.practice_id or row.status == "deleted":
        raise not_found("integration")
    return row


@router.post(
    "/v1/practices/{practice_id}/integrations",
    status_code=status.HTTP_201_CREATED,
    response_model=IntegrationCreated,
    responses={404: {"description": "no such practice"}},
)
async def create_integration(
    practice_id: uuid.UUID,
    body: IntegrationCreate,
    principal: Manager,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> IntegrationCreated:
    if practice_id != principal.practice_id:
        raise not_found("practice")
    generated = None
    stored = dict(body.credentials)
    if body.vendor in WEBHOOK_VENDORS:
        generated = None if body.webhook_secret else pysecrets.token_urlsafe(32)
        stored["webhook_secret"] = body.webhook_secret or generated or ""
    row = Integration(
        practice_id=practice_id,
        vendor=body.vendor.value,
        name=body.name,
        base_url=str(body.base_url).rstrip("/") if body.base_url else None,
        credentials="",
        service_map=dict(body.service_map),
        default_revenue_line=body.default_revenue_line.value if body.default_revenue_line else None,
        booking_url=body.booking_url,
        enrol_unknown_patients=body.enrol_unknown_patients,
        poll_interval_seconds=(body.poll_interval_seconds or DEFAULT_POLL_SECONDS)
        if body.polls
        else None,
        schedule_state=schedules.PENDING if body.polls else schedules.NONE,
    )
    try:
        row.credentials = sealing.seal(settings.payload_keys, str(row.id), stored)
    except sealing.CredentialsUnavailable:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="credential encryption is not configured (PAYLOAD_ENCRYPTION_KEYS)",
        ) from None
    session.add(row)
    add_audit(session, principal, Action.INTEGRATION_CREATE, "integration", row.id)
    await run_in_threadpool(session.commit)
    if body.polls:
        await schedules.apply(temporal.client, settings, engine, str(row.id))
        await run_in_threadpool(session.refresh, row)
    out = integration_out(row, sorted(body.credentials))
    return IntegrationCreated(**out.model_dump(), webhook_secret=generated)


@router.get("/v1/practices/{practice_id}/integrations", response_model=IntegrationPage)
def list_integrations(
    practice_id: uuid.UUID, principal: Manager, session: SessionDep, settings: SettingsDep
) -> IntegrationPage:
    if practice_id != principal.practice_id:
        raise not_found("practice")
    rows = session.exec(
        select(Integration)
        .where(Integration.practice_id == practice_id)
        .where(Integration.status != "deleted")
        .order_by(col(Integration.created_at), col(Integration.id))
    ).all()
    audit_now(session, principal, Action.INTEGRATION_READ, "integration", None)
    return IntegrationPage(
        items=[integration_out(r, _names(settings.payload_keys, r)) for r in rows]
    )


@router.get("/v1/integrations/{integration_id}", response_model=IntegrationOut)
def get_integration(
    integration_id: uuid.UUID, principal: Manager, session: SessionDep, settings: SettingsDep
) -> IntegrationOut:
    row = _own(session, principal, integration_id)
    out = integration_out(row, _names(settings.payload_keys, row))
    audit_now(session, principal, Action.INTEGRATION_READ, "integration", row.id)
    return out


@router.patch("/v1/integrations/{integration_id}", response_model=IntegrationOut)
async def update_integration(
    integration_id: uuid.UUID,
    body: IntegrationUpdate,
    principal: Manager,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> IntegrationOut:
    """Change the mapping, the booking link, the poll interval or the name; rotate the
    credentials (the webhook secret is kept)."""
    row = _own(session, principal, integration_id)
    changes = body.model_dump(exclude_unset=True)
    names = _names(settings.payload_keys, row)
    if "credentials" in changes and body.credentials is not None:
        missing = missing_credentials(Vendor(row.vendor), body.credentials)
        if missing:
            raise field_error("credentials", f"{row.vendor} needs: {', '.join(missing)}")
        try:
            old = sealing.unseal(settings.payload_keys, str(row.id), row.credentials)
            kept = {k: v for k, v in old.items() if k == "webhook_secret"}
            row.credentials = sealing.seal(
                settings.payload_keys, str(row.id), dict(body.credentials) | kept
            )
        except sealing.CredentialsUnavailable:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail="credentials cannot be sealed"
            ) from None
        names = sorted(body.credentials)
    for field in ("name", "service_map", "booking_url", "enrol_unknown_patients"):
        if field in changes and changes[field] is not None:
            setattr(row, field, changes[field])
    if "default_revenue_line" in changes:  # null clears it
        line = body.default_revenue_line
        row.default_revenue_line = line.value if line else None
    reschedule = False
    if body.poll_interval_seconds and row.poll_interval_seconds is not None:
        reschedule = body.poll_interval_seconds != row.poll_interval_seconds
        row.poll_interval_seconds = body.poll_interval_seconds
    if reschedule:
        row.schedule_state = schedules.PENDING
    row.updated_at = utcnow()
    session.add(row)
    add_audit(session, principal, Action.INTEGRATION_UPDATE, "integration", row.id)
    await run_in_threadpool(session.commit)
    if reschedule:
        await schedules.apply(temporal.client, settings, engine, str(row.id))
    await run_in_threadpool(session.refresh, row)
    return integration_out(row, names)


@router.delete("/v1/integrations/{integration_id}", response_model=IntegrationOut)
async def delete_integration(
    integration_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> IntegrationOut:
    """Soft delete: the row stays (inbound events point at it); webhooks answer 404, polling
    stops, and the credentials are wiped."""
    row = _own(session, principal, integration_id)
    polled = row.schedule_state != schedules.NONE
    row.status = "deleted"
    row.credentials = "{}"
    row.schedule_state = schedules.PENDING if polled else schedules.NONE
    row.updated_at = utcnow()
    session.add(row)
    add_audit(session, principal, Action.INTEGRATION_DELETE, "integration", row.id)
    await run_in_threadpool(session.commit)
    if polled:
        await schedules.apply(temporal.client, settings, engine, str(row.id))
        await run_in_threadpool(session.refresh, row)
    return integration_out(row, [])


@router.post("/v1/integrations/{integration_id}/test", response_model=ConnectionTest)
async def test_connection(
    integration_id: uuid.UUID, principal: Manager, session: SessionDep, settings: SettingsDep
) -> ConnectionTest:
    """One authenticated call to the vendor with the stored credentials."""
    row = _own(session, principal, integration_id)
    await run_in_threadpool(
        audit_now, session, principal, Action.INTEGRATION_TEST, "integration", row.id
    )
    try:
        creds = sealing.unseal(settings.payload_keys, str(row.id), row.credentials)
        async with httpx.AsyncClient(timeout=TEST_TIMEOUT_S) as http:
            await adapters.probe(Vendor(row.vendor), row.base_url, creds, http)
    except Exception as exc:  # any failure is the answer, not a 500
        status_code = getattr(exc, "status", None) or (
            exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
        )
        error = type(exc).__name__ + (f" (HTTP {status_code})" if status_code else "")
        return ConnectionTest(ok=False, error=error)
    return ConnectionTest(ok=True, error=None)
