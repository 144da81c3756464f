"""Polled sources: FHIR servers (Nextech STU3, ModMed R4, and R4 for 4D, PatientNow and any
generic FHIR EMR), each with its own authentication, behind one interface.

Polling asks for Appointments updated since the cursor (`_lastUpdated=ge`, oldest first, with
their Patients included), follows the bundle's next links, and moves the cursor to the newest
`meta.lastUpdated` seen. `ge` rather than `gt` re-reads the boundary instant: repeats are
harmless (vendor event ids carry the resource version) and nothing updated in the same second is
skipped."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx

from integrations import fhir
from integrations.http import RATE_LIMITS, RateLimiter, Sleep, VendorError, request
from integrations.model import NormalizedEvent, Vendor

MAX_PAGES = 20  # per poll; the next poll goes on from the cursor
PAGE_SIZE = 100
FIRST_POLL_LOOKBACK = timedelta(days=1)

# Credentials each vendor needs (names only; values are sealed at rest).
REQUIRED_CREDENTIALS: dict[Vendor, tuple[str, ...]] = {
    Vendor.BOULEVARD: ("api_key", "api_secret", "business_id"),
    Vendor.ZENOTI: ("api_key",),
    Vendor.NEXTECH: ("client_id", "client_secret", "token_url", "practice_id"),
    Vendor.MODMED: ("api_key", "username", "password", "token_url"),
    Vendor.FOURD: ("client_id", "client_secret"),
    Vendor.PATIENTNOW: ("access_token",),
    Vendor.FHIR_R4: (),
}


class FhirSource:
    def __init__(
        self,
        vendor: Vendor,
        base_url: str,
        creds: dict[str, Any],
        http: httpx.AsyncClient,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.vendor = vendor
        self.version: fhir.FhirVersion = "STU3" if vendor is Vendor.NEXTECH else "R4"
        self._base = base_url.rstrip("/")
        self._creds = creds
        self._http = http
        self._sleep = sleep
        self._limiter = RateLimiter(RATE_LIMITS.get(vendor.value, 5.0), sleep)
        self._token: str | None = None
        self.skipped = 0  # unreadable resources in the last poll (counted, never quoted)

    async def _fetch_token(self) -> str:
        c = self._creds
        if self.vendor is Vendor.MODMED:
            # ModMed: OAuth2 password grant, the practice's API key on every call.
            data = {"grant_type": "password", "username": c["username"], "password": c["password"]}
            headers = {"x-api-key": c["api_key"]}
        else:
            data = {
                "grant_type": "client_credentials",
                "client_id": c["client_id"],
                "client_secret": c["client_secret"],
            }
            if c.get("resource"):
                data["resource"] = c["resource"]
            headers = {}
        r = await request(
            self._http,
            self._limiter,
            "POST",
            c["token_url"],
            data=data,
            headers=headers,
            sleep=self._sleep,
        )
        if r.status_code != 200:
            raise VendorError("token request refused", r.status_code)
        token = r.json().get("access_token")
        if not isinstance(token, str):
            raise VendorError("token response without access_token")
        return token

    async def headers(self) -> dict[str, str]:
        c = self._creds
        h = {"Accept": "application/fhir+json"}
        if self.vendor is Vendor.FOURD:
            return h | {"client-id": c["client_id"], "client-secret": c["client_secret"]}
        if c.get("access_token"):
            return h | {"Authorization": f"Bearer {c['access_token']}"}
        if c.get("token_url"):
            self._token = self._token or await self._fetch_token()
            h["Authorization"] = f"Bearer {self._token}"
        if self.vendor is Vendor.NEXTECH:
            h["nx-practice-id"] = c["practice_id"]
        if self.vendor is Vendor.MODMED:
            h["x-api-key"] = c["api_key"]
        return h

    async def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        r = await request(
            self._http,
            self._limiter,
            "GET",
            url,
            params=params,
            headers=await self.headers(),
            sleep=self._sleep,
        )
        if r.status_code == 401 and self._token is not None:
            self._token = None  # expired: one fresh token, once
            r = await request(
                self._http,
                self._limiter,
                "GET",
                url,
                params=params,
                headers=await self.headers(),
                sleep=self._sleep,
            )
        return r

    async def probe(self) -> None:
        r = await self.get(f"{self._base}/metadata")
        if r.status_code != 200:
            raise VendorError("capability statement not served", r.status_code)

    async def changed_since(
        self, cursor: datetime | None, now: datetime
    ) -> tuple[list[NormalizedEvent], datetime, int]:
        """(events, new cursor, pages read)."""
        since = cursor or now - FIRST_POLL_LOOKBACK
        url: str | None = f"{self._base}/Appointment"
        params: dict[str, Any] | None = {
            "_lastUpdated": f"ge{since.isoformat()}",
            "_sort": "_lastUpdated",
            "_count": PAGE_SIZE,
            "_include": "Appointment:patient",
        }
        items: list[dict[str, Any]] = []
        pages = 0
        while url is not None and pages < MAX_PAGES:
            r = await self.get(url, params)
            if r.status_code != 200:
                raise VendorError("appointment search failed", r.status_code)
            bundle = r.json()
            items += fhir.resources(bundle, self.version, strict=False)
            pages += 1
            url, params = fhir.next_link(bundle), None
        newest = fhir.last_updated(i for i in items if i.get("resourceType") == "Appointment")
        # Nothing new: the window's start becomes the cursor, so a quiet integration does not
        # re-read a sliding day on every tick.
        moved = max((t for t in (cursor, newest) if t is not None), default=since)
        events, self.skipped = fhir.appointment_events_lenient(items, self.version)
        return events, moved, pages

    async def appointment(self, appointment_id: str) -> dict[str, Any] | None:
        r = await self.get(f"{self._base}/Appointment/{appointment_id}")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise VendorError("appointment read failed", r.status_code)
        body: dict[str, Any] = r.json()
        return body

    async def find_or_create_patient(
        self, phone: str | None, email: str | None, first: str | None, last: str | None
    ) -> tuple[str, bool]:
        for system, value in (("phone", phone), ("email", email)):
            if not value:
                continue
            r = await self.get(f"{self._base}/Patient", {system: value})
            if r.status_code != 200:
                raise VendorError("patient search failed", r.status_code)
            for resource in fhir.resources(r.json(), self.version):
                if resource.get("resourceType") == "Patient" and resource.get("id"):
                    return str(resource["id"]), False
        telecom = [{"system": "phone", "value": phone, "use": "mobile"}] if phone else []
        telecom += [{"system": "email", "value": email}] if email else []
        body = {
            "resourceType": "Patient",
            "name": [{"family": last, "given": [first] if first else []}],
            "telecom": telecom,
        }
        r = await request(
            self._http,
            self._limiter,
            "POST",
            f"{self._base}/Patient",
            json=body,
            headers=await self.headers() | {"Content-Type": "application/fhir+json"},
            sleep=self._sleep,
        )
        if r.status_code not in (200, 201):
            raise VendorError("patient create failed", r.status_code)
        created = r.json().get("id")
        if not isinstance(created, str):
            raise VendorError("patient create answered without an id")
        return created, True
