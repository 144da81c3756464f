"""Which parser reads which vendor's webhooks, and which client talks to which vendor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from integrations import fhir
from integrations.http import Sleep
from integrations.model import NormalizedEvent, PayloadError, Vendor
from integrations.sources import FhirSource
from integrations.vendors import boulevard, zenoti


def _fhir_webhook(body: dict[str, Any], tz: str | None = None) -> list[NormalizedEvent]:
    # A FHIR rest-hook subscription posts the Appointment (or a Bundle with its Patient).
    return fhir.appointment_events(fhir.resources(body))


WEBHOOK_PARSERS: dict[Vendor, Callable[[dict[str, Any], str | None], list[NormalizedEvent]]] = {
    Vendor.BOULEVARD: boulevard.parse_webhook,
    Vendor.ZENOTI: zenoti.parse_webhook,
    Vendor.FHIR_R4: _fhir_webhook,
}


def parse_webhook(vendor: Vendor, body: Any, tz: str | None) -> list[NormalizedEvent]:
    parser = WEBHOOK_PARSERS.get(vendor)
    if parser is None:
        raise PayloadError(f"{vendor.value} does not send webhooks")
    if not isinstance(body, dict):
        raise PayloadError("the body is not a JSON object")
    return parser(body, tz)


def fhir_source(
    vendor: Vendor,
    base_url: str | None,
    creds: dict[str, Any],
    http: httpx.AsyncClient,
    sleep: Sleep = asyncio.sleep,
) -> FhirSource | None:
    if vendor in (Vendor.BOULEVARD, Vendor.ZENOTI) or not base_url:
        return None
    return FhirSource(vendor, base_url, creds, http, sleep)


async def probe(
    vendor: Vendor, base_url: str | None, creds: dict[str, Any], http: httpx.AsyncClient
) -> None:
    """One cheap authenticated call; raises on failure."""
    if vendor is Vendor.BOULEVARD:
        await boulevard.BoulevardClient(http, base_url, creds).probe()
    elif vendor is Vendor.ZENOTI:
        await zenoti.ZenotiClient(http, base_url, creds).probe()
    else:
        source = fhir_source(vendor, base_url, creds, http)
        if source is None:
            raise PayloadError("no base_url to test")
        await source.probe()
