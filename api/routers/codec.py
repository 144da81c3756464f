"""The codec server: Temporal's remote codec protocol, so the Temporal UI (and `temporal` CLI)
show decrypted journeys while the Temporal server stores only ciphertext (docs/security.md).

    POST /codec/encode   {"payloads": [<Payload in protobuf JSON>, ...]} -> the same shape
    POST /codec/decode   likewise

The UI calls these from the browser (CORS in api/cors.py) with `Content-Type: application/json`,
`X-Namespace: <namespace>` and, when configured to, `Authorization: Bearer <token>`.

Who may call it: the admin key, or a live practice key whose role has `HISTORY_DECODE`
(practice admins and staff; not integrations) — `Authorization: Bearer`.
In **development only**, a request with no Authorization header is also accepted when its Origin
is one of TEMPORAL_UI_ORIGINS: the dev server's UI (`make run`, :8233) has no way to send a key.
Origin is a browser's word, not proof (any script can set it), so every other environment -
test and production - refuses unauthenticated requests.

Nothing here logs a payload, and error messages name at most a key id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from temporalio.api.common.v1 import Payload, Payloads

from api.audit import Action, audit_now
from api.authz import Permission
from api.deps import Principal, SessionDep, SettingsDep, _unauthorized, require
from runtime.codec import EncryptionCodec, PayloadDecryptionError

router = APIRouter(prefix="/codec", tags=["codec"])

_bearer = HTTPBearer(
    auto_error=False,
    description="Admin key, or a practice admin's or staff key (development: the UI's origin)",
)


_require_decode = require(Permission.HISTORY_DECODE)


def require_codec_access(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller, checked against the role policy like every other endpoint; None only for
    the development UI's unauthenticated origin."""
    if credentials is not None and credentials.credentials:
        # A wrong key is wrong whatever the origin: 401, or 403 for a role that may not decode.
        return _require_decode(request, credentials.credentials, settings, session)
    origin = request.headers.get("origin", "").rstrip("/")
    if settings.environment == "development" and origin and origin in settings.ui_origins:
        return None
    raise _unauthorized()


CodecAccess = Annotated[Principal | None, Depends(require_codec_access)]


class PayloadsBody(BaseModel):
    """`temporal.api.common.v1.Payloads` in protobuf JSON: each payload is
    `{"metadata": {"encoding": "<base64>", ...}, "data": "<base64>"}`."""

    payloads: list[dict[str, Any]]


def _codec(request: Request) -> EncryptionCodec | None:
    codec: EncryptionCodec | None = request.app.state.codec
    return codec


def _parse(body: PayloadsBody) -> list[Payload]:
    try:
        parsed = json_format.ParseDict({"payloads": body.payloads}, Payloads())
    except (json_format.ParseError, TypeError, ValueError):
        # The parser's message quotes the offending value: do not echo it.
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail="payloads are not valid protobuf JSON"
        ) from None
    return list(parsed.payloads)


def _answer(payloads: list[Payload]) -> dict[str, list[dict[str, Any]]]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


@router.post("/encode", responses={400: {"description": "malformed payloads"}})
async def encode(
    body: PayloadsBody, request: Request, _: CodecAccess
) -> dict[str, list[dict[str, Any]]]:
    payloads = _parse(body)
    codec = _codec(request)
    # Without keys (a bare development setup) nothing is encrypted, so encode is the identity.
    return _answer(await codec.encode(payloads) if codec else payloads)


@router.post("/decode", responses={400: {"description": "malformed or undecryptable payloads"}})
async def decode(
    body: PayloadsBody, request: Request, caller: CodecAccess, session: SessionDep
) -> dict[str, list[dict[str, Any]]]:
    payloads = _parse(body)
    if caller is not None:
        # Decrypted histories hold patient data (a treatment's name, say): reading is audited.
        await run_in_threadpool(
            audit_now, session, caller, Action.HISTORY_DECODE, "temporal_payloads", None
        )
    codec = _codec(request)
    if codec is None:
        return _answer(payloads)
    try:
        return _answer(await codec.decode(payloads))
    except PayloadDecryptionError as exc:
        # Unknown key id, tampered or truncated: the message names the key id at most.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc)) from None
