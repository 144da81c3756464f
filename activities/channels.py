"""The real providers: SMS through Twilio (a Messaging Service), email through SendGrid, both with
their official libraries, plus the throughput throttle and the provider wiring from settings.

Errors are classified here, once, into `ProviderError`s the send gate understands:

- Twilio 21610 (the recipient replied STOP to the carrier): permanent, the number is suppressed;
- Twilio 21211 / 21614 (invalid number, not a mobile): permanent, the number is marked unusable;
- 429, 20429, 5xx, timeouts: transient, the activity retries with backoff;
- other 4xx: permanent for this message (a bad request will not mend itself).

Nothing here logs an address or a body: only codes and ledger ids."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.error import URLError

import requests
from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Asm, Category, CustomArg, GroupId, Mail
from sqlalchemy.engine import Engine
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.rest import Client as TwilioClient

from activities.providers import (
    ChannelRouter,
    Effect,
    OutboundMessage,
    OutboxProvider,
    Provider,
    ProviderError,
)
from models.enums import Channel, MessageKind
from runtime.settings import Settings

log = logging.getLogger(__name__)

TWILIO_OPTED_OUT = 21610
TWILIO_UNUSABLE = frozenset({21211, 21614})
TWILIO_RATE_LIMITED = 20429


class Throttle:
    """Messages per second for one account (10DLC throughput). Each send reserves the next free
    slot and waits for it, so a wave of 10,000 messages drains at the allowed rate instead of
    being refused by the carrier. A send that would wait longer than `max_wait` (kept under the
    activity timeout) gives up *before* calling the provider; the activity retries it later
    with backoff: queued, never failed, never sent twice.

    In-process: with several workers each has its own budget, so set the rate per worker."""

    def __init__(
        self,
        per_second: float,
        *,
        max_wait: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            if slot - now > self.max_wait:
                raise ProviderError("throttled", permanent=False, delivered_maybe=False)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


class TwilioProvider:
    name = "twilio"
    # Twilio's Messages API has no idempotency key: a send whose outcome was lost must not be
    # repeated blindly (the gate settles it; the status callback can still reconcile it).
    idempotent = False

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str,
        status_callback_base: str,
        *,
        http_client: HttpClient | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self._client = TwilioClient(account_sid, auth_token, http_client=http_client)
        self._service = messaging_service_sid
        self._callback_base = status_callback_base.rstrip("/")
        self._throttle = throttle

    def status_callback_url(self, message_id: str) -> str:
        # The ledger id rides in the URL: the callback finds its row even if the activity died
        # before it could record Twilio's sid.
        return f"{self._callback_base}/v1/webhooks/twilio/status?message_id={message_id}"

    def send(self, message: OutboundMessage) -> str:
        if message.channel is not Channel.SMS:
            raise ProviderError("channel", permanent=True, delivered_maybe=False)
        if self._throttle is not None:
            self._throttle.acquire()
        try:
            created = self._client.messages.create(
                messaging_service_sid=self._service,
                to=message.to,
                body=message.body,
                status_callback=self.status_callback_url(message.message_id),
            )
        except TwilioRestException as err:
            raise classify_twilio(err.status, err.code) from None
        except requests.exceptions.ConnectTimeout:
            raise ProviderError("connect-timeout", permanent=False, delivered_maybe=False) from None
        except requests.exceptions.RequestException as err:
            raise ProviderError(type(err).__name__, permanent=False) from None
        return str(created.sid)


def classify_twilio(status: int, code: int | None) -> ProviderError:
    """A refusal Twilio answered: it did not take the message (`delivered_maybe=False`)."""
    label = str(code or status)
    if code == TWILIO_OPTED_OUT:
        return ProviderError(label, permanent=True, effect=Effect.SUPPRESS, delivered_maybe=False)
    if code in TWILIO_UNUSABLE:
        return ProviderError(label, permanent=True, effect=Effect.UNUSABLE, delivered_maybe=False)
    # Rate limits, outages and credentials (an operator can fix those) are worth retrying.
    if status in (401, 403, 429) or status >= 500 or code == TWILIO_RATE_LIMITED:
        return ProviderError(label, permanent=False, delivered_maybe=False)
    return ProviderError(label, permanent=True, delivered_maybe=False)


class SendGridProvider:
    name = "sendgrid"
    idempotent = False

    def __init__(
        self,
        api_key: str,
        from_email: str,
        *,
        marketing_group_id: int | None,
        transactional_group_id: int | None,
        host: str = "https://api.sendgrid.com",
        throttle: Throttle | None = None,
    ) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=host)
        self._from = from_email
        self._groups = {
            MessageKind.MARKETING: marketing_group_id,
            MessageKind.CARE: transactional_group_id,
            MessageKind.REPLY: transactional_group_id,
        }
        self._throttle = throttle

    def build(self, message: OutboundMessage) -> Mail:
        mail = Mail(
            from_email=self._from,
            to_emails=message.to,
            subject=message.subject,
            plain_text_content=message.body,
        )
        # Marketing and care mail sit in different unsubscribe groups: unsubscribing from offers
        # must not stop appointment reminders.
        group = self._groups[message.kind]
        if group is not None:
            mail.asm = Asm(GroupId(group))
        # Only opaque values leave in custom args and categories: they show up in SendGrid's
        # dashboards and event payloads, which are not covered like the message itself.
        mail.custom_arg = [CustomArg("message_id", message.message_id)]
        mail.category = [Category(message.kind.value)]
        return mail

    def send(self, message: OutboundMessage) -> str:
        if message.channel is not Channel.EMAIL:
            raise ProviderError("channel", permanent=True, delivered_maybe=False)
        if self._throttle is not None:
            self._throttle.acquire()
        try:
            response = self._client.send(self.build(message))
        except SendGridHTTPError as err:
            status = int(err.status_code)
            transient = status in (401, 403, 429) or status >= 500
            raise ProviderError(
                str(status), permanent=not transient, delivered_maybe=False
            ) from None
        except (URLError, TimeoutError, OSError) as err:
            raise ProviderError(type(err).__name__, permanent=False) from None
        headers = response.headers
        sg_id = headers.get("X-Message-Id") if headers is not None else None
        return str(sg_id or f"sendgrid-{message.message_id}")


def build_provider(settings: Settings, engine: Engine) -> Provider:
    """Twilio/SendGrid where credentials are set, the outbox for the rest."""
    outbox = OutboxProvider(engine)
    sms: Provider = outbox
    email: Provider = outbox
    if settings.twilio_configured:
        assert settings.twilio_account_sid and settings.twilio_auth_token
        assert settings.twilio_messaging_service_sid
        sms = TwilioProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_messaging_service_sid,
            settings.public_base_url,
            throttle=Throttle(settings.sms_messages_per_second),
        )
    if settings.sendgrid_configured:
        assert settings.sendgrid_api_key and settings.sendgrid_from_email
        email = SendGridProvider(
            settings.sendgrid_api_key.get_secret_value(),
            settings.sendgrid_from_email,
            marketing_group_id=settings.sendgrid_marketing_group_id,
            transactional_group_id=settings.sendgrid_transactional_group_id,
            throttle=Throttle(settings.email_messages_per_second),
        )
    if sms is outbox and email is outbox:
        return outbox
    return ChannelRouter({Channel.SMS: sms, Channel.EMAIL: email})
