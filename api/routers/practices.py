"""Practices: created by the admin; the response carries the practice's API key, once."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, status

from api.deps import AdminDep, SessionDep, hash_api_key
from api.schemas import PracticeCreate, PracticeCreated, PracticeOut
from models.tables import Practice

router = APIRouter(prefix="/v1/practices", tags=["practices"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PracticeCreated)
def create_practice(body: PracticeCreate, _: AdminDep, session: SessionDep) -> PracticeCreated:
    api_key = secrets.token_urlsafe(32)
    practice = Practice(
        name=body.name,
        timezone=body.timezone,
        state=body.state,
        booking_url=str(body.booking_url),
        review_url=str(body.review_url) if body.review_url else None,
        revenue_lines=[line.value for line in body.revenue_lines],
        api_key_hash=hash_api_key(api_key),
        api_key_prefix=api_key[:8],
    )
    session.add(practice)
    session.commit()
    return PracticeCreated(**PracticeOut.model_validate(practice).model_dump(), api_key=api_key)
