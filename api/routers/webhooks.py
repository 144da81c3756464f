"""Provider webhooks (DESIGN §7 `POST /v1/webhooks/...`). No API key: each request is
authenticated by its provider's signature, checked before anything is read or written, and a
missing, malformed or wrong signature is a 403. The routes are listed in api/authz.py's
`SIGNED_ROUTES` (the authorization matrix test checks every served route is accounted for).

Twilio: inbound SMS, message status callbacks, voice status callbacks (missed-call text-back).
SendGrid: the signed Event Webhook. Meta: Instagram and Facebook direct messages (with the
verify-token handshake). Google: Business Profile messages."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import PlainTextResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, SessionDep, SettingsDep, TemporalDep
from api.followups import run_followup
from api.inbound import (
    MISSED_CALL_STATUSES,
    Followup,
    clean,
    inbound_dm,
    inbound_sms,
    missed_call,
    practice_by_account,
    practice_by_number,
)
from api.provider_events import sendgrid_events, twilio_status
from api.signatures import google_valid, hub_valid, public_url, sendgrid_valid, twilio_valid
from models.tables import utcnow
from runtime.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_FIELD = 4000  # no Twilio parameter we read is longer; an SMS body is at most 1,600


def _forbidden() -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid or missing signature")


async def twilio_params(request: Request, settings: SettingsDep) -> dict[str, str]:
    """The form parameters of a Twilio request whose `X-Twilio-Signature` checks out."""
    raw = await request.body()
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise _forbidden() from None  # Twilio sends UTF-8: this did not come from Twilio
    params = dict(pairs)
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    url = public_url(settings.public_base_url, request.url.path, request.url.query)
    if not twilio_valid(token, url, params, request.headers.get("x-twilio-signature")):
        log.warning("twilio webhook refused: bad signature on %s", request.url.path)
        raise _forbidden()
    return {k: clean(v, MAX_FIELD) for k, v in params.items()}


TwilioParams = Annotated[dict[str, str], Depends(twilio_params)]


@router.post(
    "/twilio/sms",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}, 403: {"description": "bad signature"}},
)
async def twilio_inbound_sms(
    params: TwilioParams,
    session: SessionDep,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Response:
    """A text to a practice's number: a reply, a keyword (STOP/START/HELP), or a new lead.
    Answers go out through the send gate (so they are in the ledger), not as TwiML."""

    def handle(tx: Session) -> Followup:
        practice = practice_by_number(tx, params.get("To", ""))
        if practice is None:
            return Followup("ignored")
        return inbound_sms(
            tx,
            practice,
            params.get("From", ""),
            params.get("Body", ""),
            params.get("MessageSid") or params.get("SmsSid", ""),
            utcnow(),
        )

    if not (params.get("MessageSid") or params.get("SmsSid")):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="MessageSid missing")
    followup = await run_in_threadpool(handle, session)
    log.info("inbound sms handled: outcome=%s", followup.outcome)
    await run_followup(request.app, followup, engine, settings, temporal)
    return Response(EMPTY_TWIML, media_type="application/xml")


@router.post("/twilio/status", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def twilio_message_status(
    params: TwilioParams,
    session: SessionDep,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Response:
    """Message status callbacks: they come out of order; a status only moves forward."""
    message_id = request.query_params.get("message_id")
    sid = params.get("MessageSid") or params.get("SmsSid", "")
    outcome = await run_in_threadpool(
        twilio_status,
        session,
        message_id,
        sid,
        params.get("MessageStatus") or params.get("SmsStatus", ""),
        params.get("ErrorCode") or None,
        utcnow(),
    )
    if outcome.signal_journeys:
        await run_followup(
            request.app,
            Followup("opted_out", signal_journeys=outcome.signal_journeys),
            engine,
            settings,
            temporal,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/twilio/voice-status", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def twilio_voice_status(
    params: TwilioParams,
    session: SessionDep,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Response:
    """A call to a practice's number ended: unanswered (no-answer, busy, failed, canceled)
    means a missed call, texted back at once."""
    if params.get("CallStatus") not in MISSED_CALL_STATUSES:
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    def handle(tx: Session) -> Followup:
        practice = practice_by_number(tx, params.get("To", ""))
        if practice is None or not params.get("CallSid"):
            return Followup("ignored")
        return missed_call(tx, practice, params.get("From", ""), params["CallSid"], utcnow())

    followup = await run_in_threadpool(handle, session)
    log.info("missed call handled: outcome=%s", followup.outcome)
    await run_followup(request.app, followup, engine, settings, temporal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _sendgrid_signed(settings: Settings, request: Request, raw: bytes) -> bool:
    return sendgrid_valid(
        settings.sendgrid_webhook_public_key,
        raw,
        request.headers.get("x-twilio-email-event-webhook-signature"),
        request.headers.get("x-twilio-email-event-webhook-timestamp"),
    )


@router.post("/sendgrid/events", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def sendgrid_event_webhook(
    request: Request,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Response:
    """delivered, bounce, dropped, spamreport, unsubscribe: the ledger and suppression."""
    raw = await request.body()
    if not _sendgrid_signed(settings, request, raw):
        log.warning("sendgrid webhook refused: bad signature")
        raise _forbidden()
    try:
        events: Any = json.loads(raw)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="not JSON") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="expected a JSON array of events"
        )
    outcome = await run_in_threadpool(
        sendgrid_events, session, events, settings.sendgrid_marketing_group_id, utcnow()
    )
    if outcome.signal_journeys:
        await run_followup(
            request.app,
            Followup("opted_out", signal_journeys=outcome.signal_journeys),
            engine,
            settings,
            temporal,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- Instagram / Facebook (Meta) and Google Business Profile ------------------------------------


@router.get("/meta", response_class=PlainTextResponse, responses={403: {}})
def meta_subscription_handshake(request: Request, settings: SettingsDep) -> PlainTextResponse:
    """Meta's subscription check: echo `hub.challenge` when `hub.verify_token` is ours."""
    q = request.query_params
    expected = settings.meta_verify_token.get_secret_value() if settings.meta_verify_token else ""
    given = q.get("hub.verify_token", "")
    if (
        q.get("hub.mode") != "subscribe"
        or not expected
        or not hmac.compare_digest(given.encode(), expected.encode())
    ):
        raise _forbidden()
    return PlainTextResponse(q.get("hub.challenge", "")[:200])


def _meta_messages(payload: Any) -> list[tuple[str, str, str, str, str]]:
    """(channel, account id, sender handle, message id, text) of each inbound text message;
    echoes of our own messages, reactions and attachments-only messages are not inquiries."""
    found: list[tuple[str, str, str, str, str]] = []
    if not isinstance(payload, dict):
        return found
    channel = "instagram" if payload.get("object") == "instagram" else "facebook"
    for entry in payload.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        for item in entry.get("messaging") or []:
            message = item.get("message") if isinstance(item, dict) else None
            if not isinstance(message, dict) or message.get("is_echo"):
                continue
            text, mid = message.get("text"), message.get("mid")
            sender = (item.get("sender") or {}).get("id")
            account = str(entry.get("id") or (item.get("recipient") or {}).get("id") or "")
            if isinstance(text, str) and mid and sender and account:
                found.append(
                    (channel, account, clean(str(sender), 200), clean(str(mid), 200), clean(text))
                )
    return found


def _meta_one(
    session: Session, channel: str, account: str, sender: str, mid: str, text: str
) -> Followup:
    practice = practice_by_account(session, channel, account)
    if practice is None:
        return Followup("ignored")
    return inbound_dm(session, practice, channel, sender, text, mid, utcnow())


@router.post("/meta", status_code=status.HTTP_200_OK, response_class=Response)
async def meta_messages(
    request: Request,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Response:
    """Instagram and Facebook (Messenger) direct messages: new inquiries and replies."""
    raw = await request.body()
    secret = settings.meta_app_secret.get_secret_value() if settings.meta_app_secret else None
    if not hub_valid(secret, raw, request.headers.get("x-hub-signature-256")):
        log.warning("meta webhook refused: bad signature")
        raise _forbidden()
    try:
        payload = json.loads(raw)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="not JSON") from None
    for channel, account, sender, mid, text in _meta_messages(payload):
        followup = await run_in_threadpool(_meta_one, session, channel, account, sender, mid, text)
        log.info("%s message handled: outcome=%s", channel, followup.outcome)
        await run_followup(request.app, followup, engine, settings, temporal)
    return Response(status_code=status.HTTP_200_OK)


@router.post("/google", response_class=Response)
async def google_messages(
    request: Request,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Response:
    """Google Business Profile messages: the verification request (answered with its secret)
    and user messages (new inquiries and replies), signed with X-Goog-Signature."""
    raw = await request.body()
    token = (
        settings.google_messages_client_token.get_secret_value()
        if settings.google_messages_client_token
        else None
    )
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = None
    if (
        isinstance(payload, dict)
        and "secret" in payload
        and token
        and hmac.compare_digest(str(payload.get("clientToken", "")).encode(), token.encode())
    ):
        return PlainTextResponse(str(payload["secret"])[:200])  # the one-time verification
    if not google_valid(token, raw, request.headers.get("x-goog-signature")):
        log.warning("google webhook refused: bad signature")
        raise _forbidden()
    if not isinstance(payload, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="not a JSON object")
    message = payload.get("message")
    agent = str(payload.get("agent", "")).rsplit("/", 1)[-1]
    conversation = payload.get("conversationId")
    if not isinstance(message, dict) or not isinstance(message.get("text"), str):
        return Response(status_code=status.HTTP_200_OK)  # receipts, typing: nothing to do
    if not agent or not conversation or not message.get("messageId"):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="agent, conversationId and message.messageId are required",
        )
    user = (payload.get("context") or {}).get("userInfo") or {}
    name = clean(str(user.get("displayName") or ""), 100).split(" ")[0] or None

    def handle(tx: Session) -> Followup:
        practice = practice_by_account(tx, "google", agent)
        if practice is None:
            return Followup("ignored")
        return inbound_dm(
            tx,
            practice,
            "google",
            clean(str(conversation), 200),
            clean(str(message["text"])),
            clean(str(message["messageId"]), 200),
            utcnow(),
            first_name=name,
        )

    followup = await run_in_threadpool(handle, session)
    log.info("google message handled: outcome=%s", followup.outcome)
    await run_followup(request.app, followup, engine, settings, temporal)
    return Response(status_code=status.HTTP_200_OK)
