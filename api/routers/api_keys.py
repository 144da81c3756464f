"""A practice's API keys, managed by its practice_admin keys: create (the secret is shown once),
list (never secrets), revoke, rotate (a new secret under the same role and label; the old one is
revoked in the same transaction)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlmodel import Session, col, func, select

from api.audit import Action, add_audit, audit_now
from api.authz import Permission
from api.deps import Principal, SessionDep, hash_api_key, new_api_key, require
from api.errors import conflict, not_found
from api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyPage
from models.enums import Role
from models.tables import ApiKey, utcnow

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])

KeyAdmin = Annotated[Principal, Depends(require(Permission.API_KEY_MANAGE))]


def _key_of(session: Session, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.practice_id != principal.practice_id:
        raise not_found("API key")
    return row


def _new_key(practice_id: uuid.UUID, role: str, name: str) -> tuple[ApiKey, str]:
    secret = new_api_key()
    row = ApiKey(
        practice_id=practice_id,
        role=role,
        name=name,
        key_hash=hash_api_key(secret),
        prefix=secret[:8],
    )
    return row, secret


def _created(row: ApiKey, secret: str) -> ApiKeyCreated:
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), api_key=secret)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_key(body: ApiKeyCreate, principal: KeyAdmin, session: SessionDep) -> ApiKeyCreated:
    row, secret = _new_key(principal.practice_id, body.role, body.name)
    session.add(row)
    add_audit(session, principal, Action.API_KEY_CREATE, "api_key", row.id)
    session.commit()
    return _created(row, secret)


@router.get("", response_model=ApiKeyPage)
def list_keys(
    principal: KeyAdmin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ApiKeyPage:
    rows = session.exec(
        select(ApiKey)
        .where(ApiKey.practice_id == principal.practice_id)
        .order_by(col(ApiKey.created_at), col(ApiKey.id))
        .offset(offset)
        .limit(limit)
    ).all()
    audit_now(session, principal, Action.API_KEY_LIST, "api_key", None)
    return ApiKeyPage(items=[ApiKeyOut.model_validate(r) for r in rows], limit=limit, offset=offset)


def _refuse_last_admin_key(session: Session, row: ApiKey) -> None:
    """A practice must keep one live practice_admin key: otherwise nobody could manage its keys
    (the platform admin deliberately cannot)."""
    if row.role != Role.PRACTICE_ADMIN.value:
        return
    others = session.exec(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.practice_id == row.practice_id)
        .where(ApiKey.role == Role.PRACTICE_ADMIN.value)
        .where(col(ApiKey.revoked_at).is_(None))
        .where(col(ApiKey.id) != row.id)
    ).one()
    if others == 0:
        raise conflict("the practice's last practice_admin key cannot be revoked; rotate it")


@router.delete(
    "/{key_id}",
    response_model=ApiKeyOut,
    responses={409: {"description": "the last live practice_admin key"}},
)
def revoke_key(key_id: uuid.UUID, principal: KeyAdmin, session: SessionDep) -> ApiKeyOut:
    row = _key_of(session, principal, key_id)
    if row.revoked_at is None:  # revoking twice answers the same
        _refuse_last_admin_key(session, row)
        row.revoked_at = utcnow()
        session.add(row)
        add_audit(session, principal, Action.API_KEY_REVOKE, "api_key", row.id)
        session.commit()
    return ApiKeyOut.model_validate(row)


@router.post(
    "/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses={409: {"description": "the key is already revoked"}},
)
def rotate_key(key_id: uuid.UUID, principal: KeyAdmin, session: SessionDep) -> ApiKeyCreated:
    old = _key_of(session, principal, key_id)
    if old.revoked_at is not None:
        raise conflict("the key is revoked; create a new one")
    old.revoked_at = utcnow()
    session.add(old)
    row, secret = _new_key(old.practice_id, old.role, old.name)
    session.add(row)
    add_audit(session, principal, Action.API_KEY_ROTATE, "api_key", old.id)
    add_audit(session, principal, Action.API_KEY_CREATE, "api_key", row.id)
    session.commit()
    return _created(row, secret)
