"""The practice's audit log, for its practice_admin keys. Read-only: there is no write path
besides api/audit.py, and no update or delete path at all (the database refuses them too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import col, select

from api.audit import Action, audit_now
from api.authz import Permission
from api.deps import Principal, SessionDep, require
from api.schemas import AuditOut, AuditPage, UtcDatetime
from models.tables import AuditEvent

router = APIRouter(prefix="/v1/audit", tags=["audit"])

AuditReader = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]


@router.get("", response_model=AuditPage)
def list_audit(
    principal: AuditReader,
    session: SessionDep,
    from_: Annotated[UtcDatetime | None, Query(alias="from")] = None,
    to: UtcDatetime | None = None,
    action: Annotated[str | None, Query(min_length=1, max_length=60)] = None,
    resource_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditPage:
    query = select(AuditEvent).where(AuditEvent.practice_id == principal.practice_id)
    if from_ is not None:
        query = query.where(col(AuditEvent.at) >= from_)
    if to is not None:
        query = query.where(col(AuditEvent.at) < to)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if resource_id is not None:
        query = query.where(AuditEvent.resource_id == resource_id)
    rows = session.exec(
        query.order_by(col(AuditEvent.at), col(AuditEvent.id)).offset(offset).limit(limit)
    ).all()
    items = [AuditOut.model_validate(r) for r in rows]
    audit_now(session, principal, Action.AUDIT_READ, "audit_event", None)
    return AuditPage(items=items, limit=limit, offset=offset)
