"""The audit log: one append-only row per read or write of patient data (HIPAA access log).

Rows carry ids and action names only, never PHI. A write's audit row is added to the write's own
session so both commit together; a read's row is committed on its own before the data is
returned (no log row, no data)."""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlmodel import Session

from api.deps import Principal
from models.tables import AuditEvent


class Action(StrEnum):
    PRACTICE_CREATE = "practice.create"
    INQUIRY_CREATE = "inquiry.create"
    JOURNEY_READ = "journey.read"
    JOURNEY_LIST = "journey.list"
    JOURNEY_EVENT_CREATE = "journey.event.create"
    PATIENT_MESSAGES_READ = "patient.messages.read"
    PATIENT_CONVERSATION_READ = "patient.conversation.read"
    PATIENT_MESSAGE_SEND = "patient.message.send"
    PATIENT_EXPORT = "patient.export"
    PATIENT_ERASE = "patient.erase"
    API_KEY_CREATE = "api_key.create"
    API_KEY_LIST = "api_key.list"
    API_KEY_REVOKE = "api_key.revoke"
    API_KEY_ROTATE = "api_key.rotate"
    HISTORY_DECODE = "temporal.history.decode"
    AUDIT_READ = "audit.read"
    INTEGRATION_CREATE = "integration.create"
    INTEGRATION_READ = "integration.read"
    INTEGRATION_UPDATE = "integration.update"
    INTEGRATION_DELETE = "integration.delete"
    INTEGRATION_TEST = "integration.test"
    HISTORY_IMPORT = "history.import"


def add_audit(
    session: Session,
    principal: Principal,
    action: Action,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    *,
    practice_id: uuid.UUID | None = None,
) -> None:
    """Stage one audit row in `session`; the caller's commit writes it."""
    session.add(
        AuditEvent(
            practice_id=practice_id or (principal.practice.id if principal.practice else None),
            actor_key_id=principal.key_id,
            actor_role=principal.role.value,
            action=action.value,
            resource_type=resource_type,
            resource_id=str(resource_id) if resource_id is not None else None,
            ip=principal.ip,
            request_id=principal.request_id,
        )
    )


def audit_now(
    session: Session,
    principal: Principal,
    action: Action,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
) -> None:
    """Record and commit at once (reads)."""
    add_audit(session, principal, action, resource_type, resource_id)
    session.commit()
