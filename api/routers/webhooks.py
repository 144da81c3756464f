"""Provider webhooks (DESIGN §7 `POST /v1/webhooks/...`). No API key: each request is
authenticated by its provider's signature, checked before anything is read or written, and a
missing, malformed or wrong signature is a 403. The routes are listed in api/authz.py's
`SIGNED_ROUTES` (the authorization matrix test checks every served route is accounted for).

Twilio: inbound SMS, message status callbacks, voice status callbacks (missed-call text-back).
SendGrid: the signed Event Webhook."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, SessionDep, SettingsDep, TemporalDep
from api.followups import run_followup
from api.inbound import MISSED_CALL_STATUSES, Followup, inbound_sms, missed_call, practice_by_number
from api.provider_events import sendgrid_events, twilio_status
from api.signatures import public_url, sendgrid_valid, twilio_valid
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
    return {k: v[:MAX_FIELD] for k, v in params.items()}


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
