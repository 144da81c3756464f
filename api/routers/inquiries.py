"""Inquiries: commit the lead, then try to start its journey at once (speed to lead). If Temporal
is slow or down the answer is still 202: the relay starts the journey when it can."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.audit import Action, add_audit, audit_now
from api.authz import Permission
from api.deps import EngineDep, Principal, SessionDep, SettingsDep, TemporalDep, require
from api.intake import accept_inquiry
from api.journey_starter import start_journey
from api.ratelimit import TokenBucketLimiter, retry_after_header
from api.schemas import InquiryAccepted, InquiryCreate
from models.enums import InquiryStatus

router = APIRouter(prefix="/v1/inquiries", tags=["inquiries"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Used as external_id when the body has none",
    ),
]


def rate_limited(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.INQUIRY_CREATE))]
) -> Principal:
    """429 when this key or this client IP is over its budget (after auth: unknown keys are 401
    and cost nothing here)."""
    limiters: dict[str, TokenBucketLimiter] = request.app.state.inquiry_limiters
    key = str(principal.key_id)
    wait = limiters["key"].take(key)
    if wait == 0 and principal.ip is not None:
        wait = limiters["ip"].take(principal.ip)
        if wait > 0:
            limiters["key"].refund(key)  # a refused request costs nothing
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="rate limit exceeded",
            headers={"Retry-After": retry_after_header(wait)},
        )
    return principal


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InquiryAccepted,
    responses={
        409: {"description": "external_id reused with a different body"},
        429: {"description": "rate limit exceeded (see Retry-After)"},
        503: {"description": "database briefly unavailable: nothing was stored (see Retry-After)"},
    },
)
async def create_inquiry(
    body: InquiryCreate,
    principal: Annotated[Principal, Depends(rate_limited)],
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    idempotency_key: IdempotencyKey = None,
) -> InquiryAccepted:
    def audit(tx: Session, inquiry_id: uuid.UUID) -> None:
        add_audit(tx, principal, Action.INQUIRY_CREATE, "inquiry", inquiry_id)

    assert principal.practice is not None
    result = await run_in_threadpool(
        accept_inquiry, session, principal.practice, body, idempotency_key, audit
    )
    if result.plan is None:  # an idempotent repeat: nothing written, but it was answered
        await run_in_threadpool(
            audit_now, session, principal, Action.INQUIRY_CREATE, "inquiry", result.inquiry_id
        )
    inquiry_status = result.status
    client = temporal.client
    if result.plan is not None and client is not None:
        if await start_journey(client, settings, engine, result.plan):
            inquiry_status = InquiryStatus.JOURNEY_STARTED.value
    return InquiryAccepted(
        inquiry_id=result.inquiry_id,
        patient_id=result.patient_id,
        journey_id=result.journey_id,
        status=inquiry_status,
    )
