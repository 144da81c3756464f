"""The web chat: an embeddable script served by the API, and the public inquiry endpoint it
posts to, named by the practice's public key (not a secret: it sits in the page).

Public means abusable, so: a token bucket per client IP (`WEB_CHAT_RATE_PER_IP_PER_MINUTE`), and
bot protection without a third-party CAPTCHA — a honeypot field (`website`, hidden from people,
filled by form-spraying bots) and a minimum fill time (`elapsed_ms` measured by the widget from
when the form appeared; below `WEB_CHAT_MIN_FILL_SECONDS` nobody typed it). A bot gets the same
202 a person does, so it learns nothing; nothing is stored for it.

The consent boxes' exact wording is sent with the inquiry and kept as proof of consent."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from activities.messaging import DirectSend
from api.deps import EngineDep, SessionDep, SettingsDep, TemporalDep, client_ip
from api.errors import not_found
from api.followups import run_followup
from api.inbound import Followup
from api.intake import accept_inquiry
from api.ratelimit import TokenBucketLimiter, retry_after_header
from api.schemas import InquiryCreate, WebChatAccepted, WebChatInquiry
from models.enums import Channel, InquiryChannel, MessageKind
from models.tables import Patient, Practice, utcnow

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/web-chat", tags=["web chat"])

PublicKey = Annotated[str, Path(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]

# The widget: no framework, no cookies, no third-party requests. The page includes
#   <script src="https://API/v1/web-chat/widget.js" data-practice="pk_..." async></script>
# and may set data-consent to its own consent wording (what is shown is what is stored).
WIDGET_JS = r"""(function () {
  var me = document.currentScript;
  var key = me.getAttribute("data-practice");
  var api = me.src.replace(/\/v1\/web-chat\/widget\.js.*$/, "");
  var consent = me.getAttribute("data-consent") ||
    "I agree to receive texts and emails about my inquiry and offers from this practice. " +
    "Msg frequency varies. Msg & data rates may apply. Reply HELP for help, STOP to opt out. " +
    "Consent is not a condition of purchase.";
  var opened = Date.now();
  var box = document.createElement("form");
  box.setAttribute("style", "position:fixed;bottom:16px;right:16px;max-width:320px;" +
    "background:#fff;border:1px solid #ccc;padding:12px;font:14px sans-serif;z-index:99999");
  box.innerHTML =
    '<label>First name <input name="first_name" maxlength="100"></label><br>' +
    '<label>Mobile <input name="phone" type="tel" maxlength="32"></label><br>' +
    '<label>Email <input name="email" type="email" maxlength="320"></label><br>' +
    '<label>Message <textarea name="message" maxlength="2000"></textarea></label><br>' +
    '<div style="position:absolute;left:-9999px" aria-hidden="true">' +
    '<input name="website" tabindex="-1" autocomplete="off"></div>' +
    '<label><input type="checkbox" name="consent"> <span class="pj-consent"></span></label><br>' +
    '<button type="submit">Send</button> <span class="pj-status" role="status"></span>';
  box.querySelector(".pj-consent").textContent = consent;
  box.addEventListener("submit", function (e) {
    e.preventDefault();
    var f = box.elements, agreed = f.consent.checked;
    var body = {
      first_name: f.first_name.value || null, phone: f.phone.value || null,
      email: f.email.value || null, message: f.message.value || null,
      website: f.website.value || null, elapsed_ms: Date.now() - opened,
      consent: { sms: agreed, email: agreed, wording: consent }
    };
    var status = box.querySelector(".pj-status");
    fetch(api + "/v1/web-chat/" + encodeURIComponent(key) + "/inquiries", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      status.textContent = r.ok ? "Thanks! We'll be in touch shortly." :
        "Please check the form and try again.";
    }, function () { status.textContent = "Please try again."; });
  });
  document.body.appendChild(box);
})();
"""


@router.get(
    "/widget.js", response_class=Response, responses={200: {"content": {"text/javascript": {}}}}
)
def widget() -> Response:
    return Response(
        WIDGET_JS,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


def _limited(request: Request, settings: SettingsDep) -> None:
    limiter: TokenBucketLimiter = request.app.state.web_chat_limiter
    wait = limiter.take(client_ip(request, settings) or "unknown")
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="rate limit exceeded",
            headers={"Retry-After": retry_after_header(wait)},
        )


@router.post(
    "/{public_key}/inquiries",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebChatAccepted,
    dependencies=[Depends(_limited)],
    responses={404: {"description": "no practice has this public key"}, 429: {}},
)
async def web_chat_inquiry(
    public_key: PublicKey,
    body: WebChatInquiry,
    request: Request,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> WebChatAccepted:
    """A lead from the web chat: the inquiry path of POST /v1/inquiries (channel `chat`). The
    answer says nothing about the patient (the caller is anyone)."""

    def handle(tx: Session) -> Followup:
        practice = tx.exec(select(Practice).where(Practice.public_key == public_key)).first()
        if practice is None:
            raise not_found("practice")
        if body.website or body.elapsed_ms < settings.web_chat_min_fill_seconds * 1000:
            log.info("web chat submission dropped as a bot")
            return Followup("ignored")
        # Same form sent twice (a double click) is one inquiry: its content is its identity.
        fingerprint = json.dumps(body.model_dump(exclude={"elapsed_ms"}), sort_keys=True)
        try:
            inquiry = InquiryCreate.model_validate(
                {
                    "channel": InquiryChannel.CHAT.value,
                    "first_name": body.first_name,
                    "phone": body.phone,
                    "email": body.email,
                    "message": body.message,
                    "interest": body.interest or practice.revenue_lines[0],
                    "source": "web_chat",
                    "external_id": "web-chat:" + hashlib.sha256(fingerprint.encode()).hexdigest(),
                    "consent": body.consent.model_dump(),
                }
            )
        except ValidationError as err:
            # Field-level 422 as for any body; `input` is dropped by the handler (PHI).
            raise RequestValidationError(
                [e | {"loc": ("body", *e["loc"])} for e in err.errors()]
            ) from None
        had_consent = _sms_consent_before(tx, practice, inquiry)
        result = accept_inquiry(tx, practice, inquiry, None)
        answers = []
        if result.plan is not None and inquiry.consent.sms and inquiry.phone and not had_consent:
            # CTIA: a new SMS opt-in is confirmed at once (program, frequency, rates, HELP/STOP).
            answers.append(
                DirectSend(
                    f"web-chat:{result.inquiry_id}:opt_in_confirmation",
                    result.patient_id,
                    MessageKind.CARE,
                    utcnow(),
                    template="opt_in_confirmation",
                    channel=Channel.SMS,
                    respond=True,
                )
            )
        return Followup("inquiry", result.patient_id, result.plan, answers=answers)

    followup = await run_in_threadpool(handle, session)
    await run_followup(request.app, followup, engine, settings, temporal)
    return WebChatAccepted()


def _sms_consent_before(session: Session, practice: Practice, inquiry: InquiryCreate) -> bool:
    if not inquiry.phone:
        return False
    known = session.exec(
        select(Patient)
        .where(Patient.practice_id == practice.id)
        .where(Patient.phone == inquiry.phone)
    ).first()
    return known is not None and known.sms_consent and not known.sms_suppressed
