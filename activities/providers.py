"""Message providers behind the send gate: the outbox (the embedded default: it records the
message instead of sending it), Twilio for SMS and SendGrid for email (activities/channels.py),
and the router that picks one per channel."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.enums import Channel, MessageKind
from models.tables import OutboxMessage, utcnow


@dataclass
class OutboundMessage:
    idempotency_key: str
    channel: Channel
    to: str
    subject: str
    body: str
    # The ledger row's id: travels with the message (Twilio's status callback URL, SendGrid's
    # custom_args) so provider events find their row. Opaque: never PHI.
    message_id: str = ""
    kind: MessageKind = MessageKind.CARE


class Effect(StrEnum):
    """What a provider refusal means for the patient, beyond this one message."""

    NONE = "none"
    SUPPRESS = "suppress"  # the recipient opted out at the carrier/provider (Twilio 21610)
    UNUSABLE = "unusable"  # the address cannot take messages (invalid number, landline)


class ProviderError(Exception):
    """A provider refused. `permanent` errors (opted out, invalid number) are not retried.

    `delivered_maybe` is False when the provider answered with a refusal (it certainly did not
    take the message, so a retry cannot send twice) and True when the outcome is unknown (a
    timeout, a dropped connection)."""

    def __init__(
        self,
        code: str,
        *,
        permanent: bool,
        effect: Effect = Effect.NONE,
        delivered_maybe: bool = True,
    ) -> None:
        super().__init__(f"provider error {code}")
        self.code = code
        self.permanent = permanent
        self.effect = effect
        self.delivered_maybe = delivered_maybe


class Provider(Protocol):
    name: str
    # True when calling twice with the same idempotency key sends once: then a send whose
    # outcome was lost in a crash may be retried safely.
    idempotent: bool

    def send(self, message: OutboundMessage) -> str:
        """Hands the message over; returns the provider's message id."""
        ...


class OutboxProvider:
    name = "outbox"
    idempotent = True

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def send(self, message: OutboundMessage) -> str:
        with Session(self._engine) as session:
            existing = session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.idempotency_key == message.idempotency_key
                )
            ).first()
            if existing is not None:
                return f"outbox-{existing.id}"
            row = OutboxMessage(
                idempotency_key=message.idempotency_key,
                channel=message.channel.value,
                to=message.to,
                body=message.body
                if message.channel is Channel.SMS
                else f"{message.subject}\n\n{message.body}",
                handed_at=utcnow(),
            )
            session.add(row)
            try:
                session.commit()
            except sa.exc.IntegrityError:  # a concurrent attempt won: same message
                session.rollback()
                won = session.exec(
                    select(OutboxMessage).where(
                        OutboxMessage.idempotency_key == message.idempotency_key
                    )
                ).one()
                return f"outbox-{won.id}"
            return f"outbox-{row.id}"


def provider_name(provider: Provider, channel: Channel) -> str:
    """The name of the provider that takes `channel` (the router answers per channel)."""
    name_for = getattr(provider, "name_for", None)
    return str(name_for(channel)) if name_for is not None else provider.name


def provider_idempotent(provider: Provider, channel: Channel) -> bool:
    idempotent_for = getattr(provider, "idempotent_for", None)
    return bool(idempotent_for(channel)) if idempotent_for is not None else provider.idempotent


class ChannelRouter:
    """One provider per channel: Twilio for SMS when configured, SendGrid for email when
    configured, the outbox for whatever is not. `make run` without credentials is all outbox."""

    name = "router"
    idempotent = False

    def __init__(self, by_channel: dict[Channel, Provider]) -> None:
        self._by_channel = by_channel

    def _for(self, channel: Channel) -> Provider:
        return self._by_channel[channel]

    def name_for(self, channel: Channel) -> str:
        return self._for(channel).name

    def idempotent_for(self, channel: Channel) -> bool:
        return self._for(channel).idempotent

    def send(self, message: OutboundMessage) -> str:
        return self._for(message.channel).send(message)
