"""An in-process fake EMR: a real HTTP server (uvicorn on a free port, in a thread) speaking each
polled vendor's FHIR dialect and authentication, plus the Zenoti and Boulevard look-ups.

State is set by the test: per vendor, the current Appointment and Patient resources, and an
optional failure status. Every request is recorded (path and the auth headers' presence)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "fake-token"
STATIC_TOKEN = "patientnow-token"


@dataclass
class VendorState:
    appointments: dict[str, dict[str, Any]] = field(default_factory=dict)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_status: int | None = None
    requests: list[str] = field(default_factory=list)


@dataclass
class FakeVendor:
    url: str = ""
    states: dict[str, VendorState] = field(default_factory=dict)

    def state(self, vendor: str) -> VendorState:
        return self.states.setdefault(vendor, VendorState())

    def put_bundle(self, vendor: str, bundle: dict[str, Any]) -> None:
        """Store the resources of a (fixture-shaped) bundle as the vendor's current data."""
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            kind = resource["resourceType"]
            target = (
                self.state(vendor).appointments
                if kind == "Appointment"
                else (self.state(vendor).patients)
            )
            target[resource["id"]] = resource


def _authorized(vendor: str, request: Request) -> bool:
    h = request.headers
    if vendor == "nextech":
        return h.get("authorization") == f"Bearer {TOKEN}" and bool(h.get("nx-practice-id"))
    if vendor == "modmed":
        return h.get("authorization") == f"Bearer {TOKEN}" and bool(h.get("x-api-key"))
    if vendor == "4d":
        return bool(h.get("client-id")) and bool(h.get("client-secret"))
    if vendor == "patientnow":
        return h.get("authorization") == f"Bearer {STATIC_TOKEN}"
    return True  # generic FHIR without auth


def _since(value: str | None) -> datetime | None:
    if not value or not value.startswith("ge"):
        return None
    return datetime.fromisoformat(value[2:].replace("Z", "+00:00"))


def _updated(resource: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(resource["meta"]["lastUpdated"].replace("Z", "+00:00"))


def build_app(fake: FakeVendor) -> Starlette:
    async def token(request: Request) -> Response:
        vendor = request.path_params["vendor"]
        fake.state(vendor).requests.append("POST token")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") not in ("client_credentials", "password"):
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        return JSONResponse({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})

    def guard(vendor: str, request: Request) -> Response | None:
        state = fake.state(vendor)
        state.requests.append(f"{request.method} {request.url.path}")
        if state.fail_status:
            return JSONResponse({"issue": "failing on purpose"}, state.fail_status)
        if not _authorized(vendor, request):
            return JSONResponse({"issue": "unauthorized"}, 401)
        return None

    async def metadata(request: Request) -> Response:
        vendor = request.path_params["vendor"]
        return guard(vendor, request) or JSONResponse(
            {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance"}
        )

    async def search(request: Request) -> Response:
        vendor = request.path_params["vendor"]
        refused = guard(vendor, request)
        if refused:
            return refused
        state = fake.state(vendor)
        since = _since(request.query_params.get("_lastUpdated"))
        matches = sorted(
            (a for a in state.appointments.values() if since is None or _updated(a) >= since),
            key=_updated,
        )
        entries = [{"resource": a, "search": {"mode": "match"}} for a in matches]
        if request.query_params.get("_include") == "Appointment:patient":
            refs = {p["actor"]["reference"] for a in matches for p in a["participant"]}
            entries += [
                {"resource": p, "search": {"mode": "include"}}
                for pid, p in state.patients.items()
                if f"Patient/{pid}" in refs
            ]
        return JSONResponse({"resourceType": "Bundle", "type": "searchset", "entry": entries})

    async def read(request: Request) -> Response:
        vendor = request.path_params["vendor"]
        refused = guard(vendor, request)
        if refused:
            return refused
        found = fake.state(vendor).appointments.get(request.path_params["id"])
        return JSONResponse(found) if found else JSONResponse({}, 404)

    async def patients(request: Request) -> Response:
        vendor = request.path_params["vendor"]
        refused = guard(vendor, request)
        if refused:
            return refused
        state = fake.state(vendor)
        if request.method == "POST":
            body = await request.json()
            body["id"] = f"new-{len(state.patients) + 1}"
            state.patients[body["id"]] = body
            return JSONResponse(body, 201)
        phone, email = request.query_params.get("phone"), request.query_params.get("email")
        hits = [
            p
            for p in state.patients.values()
            if any(t.get("value") in (phone, email) for t in p.get("telecom", []))
        ]
        return JSONResponse(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": p} for p in hits],
            }
        )

    async def zenoti_centers(request: Request) -> Response:
        ok = request.headers.get("authorization", "").startswith("apikey ")
        return JSONResponse({"centers": []}) if ok else JSONResponse({}, 401)

    async def zenoti_appointment(request: Request) -> Response:
        found = fake.state("zenoti").appointments.get(request.path_params["id"])
        return JSONResponse(found) if found else JSONResponse({}, 404)

    async def zenoti_guest_search(request: Request) -> Response:
        state = fake.state("zenoti")
        state.requests.append(f"GET guests/search {sorted(request.query_params)}")
        phone = request.query_params.get("phone")
        hits = [g for g in state.patients.values() if phone and g.get("phone") == phone]
        return JSONResponse({"guests": hits})

    async def zenoti_guest_create(request: Request) -> Response:
        state = fake.state("zenoti")
        body = await request.json()
        if not body.get("center_id"):
            return JSONResponse({"error": "center_id required"}, 400)
        guest_id = f"guest-{len(state.patients) + 1}"
        number = (body["personal_info"].get("mobile_phone") or {}).get("number")
        state.patients[guest_id] = {"id": guest_id, "phone": f"+1{number}" if number else None}
        return JSONResponse({"id": guest_id}, 200)

    async def boulevard_graphql(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return JSONResponse({"errors": [{"message": "unauthorized"}]}, 401)
        body = await request.json()
        clients = fake.state("boulevard").patients
        if "createClient(" in body["query"]:
            new_id = f"urn:blvd:Client:{len(clients) + 1}"
            clients[new_id] = {"id": new_id, **body["variables"]["input"]}
            return JSONResponse({"data": {"createClient": {"client": {"id": new_id}}}})
        if "clients(" in body["query"]:
            field, _, value = body["variables"]["query"].partition(" = ")
            hits = [c for c in clients.values() if f"'{c.get(field)}'" == value]
            edges = [{"node": {"id": c["id"]}} for c in hits[:1]]
            return JSONResponse({"data": {"clients": {"edges": edges}}})
        if "appointment(" in body["query"]:
            node = fake.state("boulevard").appointments.get(body["variables"]["id"])
            return JSONResponse({"data": {"appointment": node}})
        return JSONResponse({"data": {"business": {"id": "biz"}}})

    return Starlette(
        routes=[
            Route("/{vendor}/token", token, methods=["POST"]),
            Route("/{vendor}/metadata", metadata),
            Route("/{vendor}/Appointment", search),
            Route("/{vendor}/Appointment/{id}", read),
            Route("/{vendor}/Patient", patients, methods=["GET", "POST"]),
            Route("/zenoti/v1/centers", zenoti_centers),
            Route("/zenoti/v1/appointments/{id}", zenoti_appointment),
            Route("/zenoti/v1/guests/search", zenoti_guest_search),
            Route("/zenoti/v1/guests", zenoti_guest_create, methods=["POST"]),
            Route("/boulevard/graphql", boulevard_graphql, methods=["POST"]),
        ]
    )


@contextmanager
def running() -> Iterator[FakeVendor]:
    fake = FakeVendor()
    config = uvicorn.Config(build_app(fake), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # start-up, not a journey step: a bounded wait for the socket
        if time.monotonic() > deadline:
            raise RuntimeError("fake vendor did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
