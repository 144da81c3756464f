"""Boulevard: appointment and client webhooks in, the GraphQL Admin API for look-ups.

Built from Boulevard's public developer documentation (docs/integrations.md lists what needs a
sandbox to confirm): webhook bodies carry the event name and the changed node; the Admin API
authenticates with HTTP Basic `api_key:token`, the token being an HMAC-SHA256 (keyed with the
base64-decoded API secret) of `blvd-admin-v1{business_id}{unix_time}`, followed by that payload."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import httpx

from integrations.model import ApptStatus, Kind, NormalizedEvent, PatientRef, PayloadError
from integrations.vendors.common import obj, text, when

PRODUCTION_URL = "https://dashboard.boulevard.io/api/2020-01/admin"
SANDBOX_URL = "https://sandbox.joinblvd.com/api/2020-01/admin"

# AppointmentState in the Admin API schema.
STATES: dict[str, ApptStatus] = {
    "BOOKED": ApptStatus.BOOKED,
    "CONFIRMED": ApptStatus.BOOKED,
    "ARRIVED": ApptStatus.ARRIVED,
    "ACTIVE": ApptStatus.ARRIVED,  # in the chair
    "FINAL": ApptStatus.COMPLETED,  # checked out
    "CANCELLED": ApptStatus.CANCELLED,
}
EVENTS: dict[str, Kind] = {
    "APPOINTMENT_CREATED": Kind.APPOINTMENT_BOOKED,
    "APPOINTMENT_RESCHEDULED": Kind.APPOINTMENT_RESCHEDULED,
    "APPOINTMENT_CANCELLED": Kind.APPOINTMENT_CANCELLED,
    "APPOINTMENT_ARRIVED": Kind.APPOINTMENT_ARRIVED,
    "APPOINTMENT_ACTIVATED": Kind.APPOINTMENT_ARRIVED,
    "APPOINTMENT_COMPLETED": Kind.APPOINTMENT_COMPLETED,
    "APPOINTMENT_UPDATED": Kind.APPOINTMENT_OBSERVED,
    "APPOINTMENT_CONFIRMED": Kind.APPOINTMENT_OBSERVED,
    "CLIENT_CREATED": Kind.PATIENT_UPSERTED,
    "CLIENT_UPDATED": Kind.PATIENT_UPSERTED,
}


def admin_token(api_key: str, api_secret: str, business_id: str, now: int | None = None) -> str:
    """The value of the Authorization header for the Admin API."""
    payload = f"blvd-admin-v1{business_id}{now if now is not None else int(time.time())}"
    raw_key = base64.b64decode(api_secret)
    signature = base64.b64encode(
        hmac.new(raw_key, payload.encode(), hashlib.sha256).digest()
    ).decode()
    basic = base64.b64encode(f"{api_key}:{signature}{payload}".encode()).decode()
    return f"Basic {basic}"


def _client(node: dict[str, Any]) -> PatientRef:
    return PatientRef(
        vendor_id=text(node.get("id")),
        first_name=text(node.get("firstName")),
        last_name=text(node.get("lastName")),
        phone=text(node.get("mobilePhone")),
        email=text(node.get("email")),
    )


def parse_webhook(body: dict[str, Any], tz: str | None = None) -> list[NormalizedEvent]:
    event_id = text(body.get("idempotencyKey")) or text(body.get("id"))
    name = text(body.get("event"))
    if event_id is None or name is None:
        raise PayloadError("Boulevard webhook needs idempotencyKey (or id) and event")
    kind = EVENTS.get(name)
    if kind is None:
        return []  # a subscription we do not act on (orders, staff...)
    node = obj(obj(body.get("data"), "data").get("node"), "data.node")
    if kind is Kind.PATIENT_UPSERTED:
        return [NormalizedEvent(kind, event_id, _client(node), when(body.get("timestamp")))]
    state = text(node.get("state")) or ""
    status = STATES.get(state, ApptStatus.TENTATIVE)
    reason = text(obj(node.get("cancellation") or {}, "cancellation").get("reason"))
    if status is ApptStatus.CANCELLED and reason == "NO_SHOW":
        kind, status = Kind.APPOINTMENT_NO_SHOW, ApptStatus.NO_SHOW
    services = node.get("appointmentServices") or []
    names: list[str] = []
    cents = 0
    for item in services if isinstance(services, list) else []:
        if not isinstance(item, dict):
            continue
        found = item.get("service")
        service: dict[str, Any] = found if isinstance(found, dict) else {}
        names += [v for v in (text(service.get("id")), text(service.get("name"))) if v]
        price = item.get("price")
        cents += price if isinstance(price, int) and not isinstance(price, bool) else 0
    appointment_id = text(node.get("id"))
    if appointment_id is None:
        raise PayloadError("Boulevard appointment node has no id")
    return [
        NormalizedEvent(
            kind=kind,
            vendor_event_id=event_id,
            patient=_client(obj(node.get("client"), "data.node.client")),
            occurred_at=when(body.get("timestamp")),
            appointment_id=appointment_id,
            appointment_at=when(node.get("startAt"), tz),
            status=status,
            services=names,
            amount=cents / 100 if kind is Kind.APPOINTMENT_COMPLETED and cents else None,
        )
    ]


APPOINTMENT_QUERY = """query Appointment($id: ID!) {
  appointment(id: $id) { id startAt state cancelled client { id }
    appointmentServices { service { id name } price } }
}"""
PROBE_QUERY = "query { business { id } }"
CLIENTS_QUERY = """query Clients($query: QueryString) {
  clients(first: 1, query: $query) { edges { node { id } } }
}"""
CREATE_CLIENT = """mutation CreateClient($input: CreateClientInput!) {
  createClient(input: $input) { client { id } }
}"""


class BoulevardClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str | None, creds: dict[str, Any]):
        self._http = http
        self._url = base_url or PRODUCTION_URL
        self._creds = creds

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        auth = admin_token(
            self._creds["api_key"], self._creds["api_secret"], self._creds["business_id"]
        )
        r = await self._http.post(
            self._url,
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": auth},
        )
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        if data.get("errors"):
            raise RuntimeError("Boulevard GraphQL error")  # messages may quote values: not kept
        return data

    async def probe(self) -> None:
        await self.graphql(PROBE_QUERY)

    async def appointment(self, appointment_id: str) -> dict[str, Any] | None:
        data = await self.graphql(APPOINTMENT_QUERY, {"id": appointment_id})
        node = (data.get("data") or {}).get("appointment")
        return node if isinstance(node, dict) else None

    async def find_or_create_client(
        self, phone: str | None, email: str | None, first: str | None, last: str | None
    ) -> tuple[str, bool]:
        """(client id, created): search by mobile phone, then email; else create."""
        for field, value in (("mobilePhone", phone), ("email", email)):
            # Values go inside the query language's quotes: anything that could close them
            # is not searched for (a create follows, which the vendor dedupes or we link).
            if not value or "'" in value or "\\" in value:
                continue
            data = await self.graphql(CLIENTS_QUERY, {"query": f"{field} = '{value}'"})
            edges = ((data.get("data") or {}).get("clients") or {}).get("edges") or []
            if edges and (edges[0].get("node") or {}).get("id"):
                return str(edges[0]["node"]["id"]), False
        data = await self.graphql(
            CREATE_CLIENT,
            {"input": {"firstName": first, "lastName": last, "email": email, "mobilePhone": phone}},
        )
        client = ((data.get("data") or {}).get("createClient") or {}).get("client") or {}
        if not client.get("id"):
            raise RuntimeError("Boulevard createClient answered without an id")
        return str(client["id"]), True
