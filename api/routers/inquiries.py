"""Inquiries: commit the lead, then try to start its journey at once (speed to lead). If Temporal
is slow or down the answer is still 202: the relay starts the journey when it can."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, status
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, PracticeDep, SessionDep, SettingsDep, TemporalDep
from api.intake import accept_inquiry
from api.journey_starter import start_journey
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


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InquiryAccepted,
    responses={409: {"description": "external_id reused with a different body"}},
)
async def create_inquiry(
    body: InquiryCreate,
    practice: PracticeDep,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    idempotency_key: IdempotencyKey = None,
) -> InquiryAccepted:
    result = await run_in_threadpool(accept_inquiry, session, practice, body, idempotency_key)
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
