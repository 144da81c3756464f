"""Who may do what: ONE table (`POLICY`), read by the `require(Permission.X)` dependency.

Order of answers: no/unknown/revoked key -> 401; a known key whose role lacks the permission ->
403; permitted -> the endpoint runs, and another practice's ids answer 404 as if absent."""

from __future__ import annotations

from enum import StrEnum

from models.enums import Role


class Permission(StrEnum):
    PRACTICE_CREATE = "practice.create"
    INQUIRY_CREATE = "inquiry.create"
    JOURNEY_READ = "journey.read"
    JOURNEY_EVENT_CREATE = "journey.event.create"
    PATIENT_MESSAGES_READ = "patient.messages.read"
    PATIENT_EXPORT = "patient.export"
    PATIENT_ERASE = "patient.erase"
    API_KEY_MANAGE = "api_key.manage"
    AUDIT_READ = "audit.read"
    HISTORY_DECODE = "temporal.history.decode"  # the codec server, for the Temporal UI
    LIBRARY_READ = "library.read"  # the track library, the practice's edits, previews
    LIBRARY_EDIT = "library.edit"
    FUNNEL_READ = "funnel.read"  # the eight-stage map and its dashboard: aggregates, no PHI
    HISTORY_IMPORT = "history.import"  # audit mode: a practice's historical export


_A, _PA, _S, _I = Role.ADMIN, Role.PRACTICE_ADMIN, Role.STAFF, Role.INTEGRATION

# The whole policy. The platform admin only creates practices: it holds no practice's data.
POLICY: dict[Permission, frozenset[Role]] = {
    Permission.PRACTICE_CREATE: frozenset({_A}),
    Permission.INQUIRY_CREATE: frozenset({_PA, _I}),
    Permission.JOURNEY_READ: frozenset({_PA, _S, _I}),
    Permission.JOURNEY_EVENT_CREATE: frozenset({_PA, _S, _I}),
    Permission.PATIENT_MESSAGES_READ: frozenset({_PA, _S}),
    Permission.PATIENT_EXPORT: frozenset({_PA}),
    Permission.PATIENT_ERASE: frozenset({_PA}),
    Permission.API_KEY_MANAGE: frozenset({_PA}),
    Permission.AUDIT_READ: frozenset({_PA}),
    # Decrypting journey histories is reading patient data: people, not integrations. The
    # platform admin may too — it operates the Temporal cluster whose UI calls the codec.
    Permission.HISTORY_DECODE: frozenset({_A, _PA, _S}),
    # The library is configuration, not patient data, but it is the practice's: staff and
    # integrations read it and preview; only practice admins change what patients receive.
    Permission.LIBRARY_READ: frozenset({_PA, _S, _I}),
    Permission.LIBRARY_EDIT: frozenset({_PA}),
    # The map is counts and money, no patient: staff see it too. An import brings in patients'
    # contact details and history: practice admins only.
    Permission.FUNNEL_READ: frozenset({_PA, _S}),
    Permission.HISTORY_IMPORT: frozenset({_PA}),
}

# Roles a practice key may have (the admin key lives in settings, never in the table).
KEY_ROLES = (Role.PRACTICE_ADMIN, Role.STAFF, Role.INTEGRATION)


def allowed(role: Role, permission: Permission) -> bool:
    return role in POLICY[permission]
