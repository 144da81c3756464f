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
    PATIENT_MESSAGE_SEND = "patient.message.send"  # a staff reply, through the send gate
    PATIENT_EXPORT = "patient.export"
    PATIENT_ERASE = "patient.erase"
    API_KEY_MANAGE = "api_key.manage"
    AUDIT_READ = "audit.read"
    HISTORY_DECODE = "temporal.history.decode"  # the codec server, for the Temporal UI
    LIBRARY_READ = "library.read"  # the track library, the practice's edits, previews
    LIBRARY_EDIT = "library.edit"
    INTEGRATION_MANAGE = "integration.manage"  # EMR integrations: credentials, test, status
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
    # Writing to a patient is a person's job: integrations feed events, they do not chat.
    Permission.PATIENT_MESSAGE_SEND: frozenset({_PA, _S}),
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
    # Vendor credentials are the practice's keys to its EMR: practice admins only.
    Permission.INTEGRATION_MANAGE: frozenset({_PA}),
    # The map is counts and money, no patient: staff see it too. An import brings in patients'
    # contact details and history: practice admins only.
    Permission.FUNNEL_READ: frozenset({_PA, _S}),
    Permission.HISTORY_IMPORT: frozenset({_PA}),
}

# EMR webhooks take no API key: each is verified by its vendor's signature (or the
# integration's HMAC secret) in the endpoint, and answers 401 without it
# (tests/api/test_emr_webhooks.py). The provider webhooks below answer 403 instead.
SIGNATURE_AUTHENTICATED_PREFIXES = ("/v1/webhooks/emr/",)
# Routes that take no API key, and what authenticates them instead. Provider webhooks are
# authenticated by their provider's signature (a key is no substitute: without the signature
# they answer 403 whoever calls); the web chat is public by design, named by the practice's
# public key, rate-limited per client IP and guarded against bots (api/routers/web_chat.py).
SIGNED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/webhooks/twilio/sms"): "X-Twilio-Signature",
    ("POST", "/v1/webhooks/twilio/status"): "X-Twilio-Signature",
    ("POST", "/v1/webhooks/twilio/voice-status"): "X-Twilio-Signature",
    ("POST", "/v1/webhooks/sendgrid/events"): "X-Twilio-Email-Event-Webhook-Signature",
    ("GET", "/v1/webhooks/meta"): "hub.verify_token (Meta's subscription handshake)",
    ("POST", "/v1/webhooks/meta"): "X-Hub-Signature-256",
    ("POST", "/v1/webhooks/google"): "X-Goog-Signature (or the verification's client token)",
}
PUBLIC_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/v1/web-chat/widget.js"): "static script",
    ("POST", "/v1/web-chat/{public_key}/inquiries"): "practice public key + rate limit",
}

# Roles a practice key may have (the admin key lives in settings, never in the table).
KEY_ROLES = (Role.PRACTICE_ADMIN, Role.STAFF, Role.INTEGRATION)


def allowed(role: Role, permission: Permission) -> bool:
    return role in POLICY[permission]
