"""Practices: created by the admin; the response carries the practice's first key (a
practice_admin key), once. That key creates the practice's other keys (api/routers/api_keys.py)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy.exc import IntegrityError

from api.audit import Action, add_audit
from api.authz import Permission
from api.deps import Principal, SessionDep, hash_api_key, new_api_key, require
from api.errors import conflict
from api.schemas import PracticeCreate, PracticeCreated, PracticeOut
from models.enums import Role
from models.tables import ApiKey, Practice, PracticeAccount

router = APIRouter(prefix="/v1/practices", tags=["practices"])

Admin = Annotated[Principal, Depends(require(Permission.PRACTICE_CREATE))]


def new_public_key() -> str:
    """Not a secret (it sits in the practice's web page): unguessable so practices cannot be
    enumerated, and prefixed so it is never mistaken for an API key."""
    return "pk_" + secrets.token_urlsafe(18)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PracticeCreated)
def create_practice(body: PracticeCreate, principal: Admin, session: SessionDep) -> PracticeCreated:
    secret = new_api_key()
    practice = Practice(
        name=body.name,
        timezone=body.timezone,
        state=body.state,
        booking_url=str(body.booking_url),
        review_url=str(body.review_url) if body.review_url else None,
        revenue_lines=[line.value for line in body.revenue_lines],
        public_key=new_public_key(),
        sms_number=body.sms_number,
        help_text=body.help_text,
    )
    session.add(practice)
    for account in body.messaging_accounts:
        session.add(
            PracticeAccount(
                practice_id=practice.id, channel=account.channel, account_id=account.account_id
            )
        )
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict("sms_number or a messaging account belongs to another practice") from None
    key = ApiKey(
        practice_id=practice.id,
        role=Role.PRACTICE_ADMIN.value,
        name="initial key",
        key_hash=hash_api_key(secret),
        prefix=secret[:8],
    )
    session.add(key)
    add_audit(
        session, principal, Action.PRACTICE_CREATE, "practice", practice.id, practice_id=practice.id
    )
    session.commit()
    return PracticeCreated(
        **PracticeOut.model_validate(practice).model_dump(),
        api_key=secret,
        api_key_id=key.id,
        api_key_prefix=key.prefix,
    )
