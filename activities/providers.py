"""Message providers behind the send gate. The outbox is the embedded default: it records the
message instead of sending it (Twilio and SendGrid arrive with issue 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.enums import Channel
from models.tables import OutboxMessage, utcnow


@dataclass
class OutboundMessage:
    idempotency_key: str
    channel: Channel
    to: str
    subject: str
    body: str


class ProviderError(Exception):
    """A provider refused. `permanent` errors (opted out, invalid number) are not retried."""

    def __init__(self, code: str, *, permanent: bool) -> None:
        super().__init__(f"provider error {code}")
        self.code = code
        self.permanent = permanent


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
