"""EMR activities: polling, and the outbound calls a journey may make (read an appointment,
find or create the patient in the EMR, the booking link). Retry policies for callers are
defined here next to the calls they fit.

Inputs and results are ids, statuses and times (models/emr_types.py): patient details are read
from the database inside the activity and sent only to the vendor, never through Temporal."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio import activity
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from api.event_delivery import deliver, load_pending
from api.journey_starter import start_journey
from integrations import secrets
from integrations.adapters import fhir_source
from integrations.ingest import IngestResult, ingest_counted
from integrations.model import NormalizedEvent, Vendor
from integrations.vendors import boulevard, zenoti
from models.emr_types import (
    AppointmentState,
    BookingLink,
    BookingLinkInput,
    ConsultCheckInput,
    EmrPollInput,
    EmrPollResult,
    PatientLinkInput,
    PatientLinkResult,
    ReadAppointmentInput,
)
from models.tables import (
    EmrAppointment,
    Integration,
    Patient,
    PatientExternalId,
    Practice,
    utcnow,
)
from runtime.db import session_scope
from runtime.settings import Settings

log = logging.getLogger(__name__)

# For workflows calling the outbound activities: vendor look-ups are idempotent reads (or a
# search-then-create), so a few spaced retries are safe.
OUTBOUND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=5,
    non_retryable_error_types=["CredentialsUnavailable", "NotSupported"],
)
HTTP_TIMEOUT_S = 20.0

HttpFactory = Callable[[], httpx.AsyncClient]


def _default_http() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S)


def _error_text(exc: BaseException) -> str:
    # Type and (for VendorError) the HTTP status: never a vendor body, which may quote PHI.
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")


class EmrActivities:
    def __init__(
        self,
        engine: Engine,
        client: Client,
        settings: Settings,
        http_factory: HttpFactory = _default_http,
    ) -> None:
        self._engine = engine
        self._client = client
        self._settings = settings
        self._http = http_factory

    # ---- helpers ---------------------------------------------------------------------------

    def _load(self, integration_id: str) -> tuple[Integration, dict[str, str]] | None:
        with session_scope(self._engine) as session:
            row = session.get(Integration, uuid.UUID(integration_id))
            if row is None or row.status != "active":
                return None
            creds = secrets.unseal(self._settings.payload_keys, str(row.id), row.credentials)
            session.expunge(row)
            return row, creds

    def _record_poll(
        self, integration_id: str, status: str, error: str | None, cursor: str | None
    ) -> None:
        with session_scope(self._engine) as session:
            row = session.get(Integration, uuid.UUID(integration_id))
            if row is None:
                return
            row.last_poll_at = utcnow()
            row.last_poll_status = status
            row.last_error = error
            if cursor is not None:
                row.cursor = cursor
            row.updated_at = utcnow()
            session.add(row)
            session.commit()

    def _ingest(self, integration: Integration, events: list[NormalizedEvent]) -> IngestResult:
        with session_scope(self._engine) as session:
            row = session.get(Integration, integration.id)
            assert row is not None
            return ingest_counted(session, row, events, "poll")

    async def _handover(self, result: IngestResult) -> None:
        """Start new journeys and signal new events now; the relay catches whatever fails."""
        for plan in result.plans:
            await start_journey(self._client, self._settings, self._engine, plan)
        if result.journey_ids:
            pending = await asyncio.to_thread(
                load_pending, self._engine, journey_ids=result.journey_ids
            )
            await deliver(self._client, self._settings, self._engine, pending)

    # ---- activities ------------------------------------------------------------------------

    @activity.defn(name="emr_poll")
    async def poll(self, inp: EmrPollInput) -> EmrPollResult:
        try:
            loaded = await asyncio.to_thread(self._load, inp.integration_id)
            if loaded is None:
                return EmrPollResult(skipped=True)
            integration, creds = loaded
            cursor = datetime.fromisoformat(integration.cursor) if integration.cursor else None
            async with self._http() as http:
                source = fhir_source(Vendor(integration.vendor), integration.base_url, creds, http)
                if source is None:
                    return EmrPollResult(skipped=True)  # a webhook-only integration
                events, newest, pages = await source.changed_since(cursor, datetime.now(UTC))
            result = await asyncio.to_thread(self._ingest, integration, events)
        except Exception as exc:
            await asyncio.to_thread(
                self._record_poll, inp.integration_id, "error", _error_text(exc), None
            )
            log.warning(
                "emr poll failed: integration=%s error=%s", inp.integration_id, _error_text(exc)
            )
            raise
        # The cursor moves only once the events are committed: a crash re-reads, never skips.
        new_cursor = newest.isoformat()
        # Unreadable resources are skipped (they would block the cursor for ever) but shown.
        note = f"{source.skipped} unreadable resource(s) skipped" if source.skipped else None
        await asyncio.to_thread(self._record_poll, inp.integration_id, "ok", note, new_cursor)
        await self._handover(result)
        return EmrPollResult(
            fetched=len(events),
            applied=result.outcomes.count("applied"),
            duplicates=result.duplicates,
            pages=pages,
            cursor=new_cursor,
        )

    @activity.defn(name="emr_read_appointment")
    async def read_appointment(self, inp: ReadAppointmentInput) -> AppointmentState:
        """The vendor's current state of one appointment (e.g. a consult time passed with
        neither arrived nor no-show heard)."""
        from integrations import fhir
        from integrations.model import ApptStatus

        loaded = await asyncio.to_thread(self._load, inp.integration_id)
        if loaded is None:
            return AppointmentState(found=False)
        integration, creds = loaded
        vendor = Vendor(integration.vendor)
        async with self._http() as http:
            if vendor is Vendor.BOULEVARD:
                node = await boulevard.BoulevardClient(
                    http, integration.base_url, creds
                ).appointment(inp.appointment_id)
                if node is None:
                    return AppointmentState(found=False)
                status = boulevard.STATES.get(str(node.get("state")), ApptStatus.TENTATIVE)
                return AppointmentState(True, status.value, _when(node.get("startAt")))
            if vendor is Vendor.ZENOTI:
                body = await zenoti.ZenotiClient(http, integration.base_url, creds).appointment(
                    inp.appointment_id
                )
                if body is None:
                    return AppointmentState(found=False)
                nested = body.get("appointment")
                item: dict[str, Any] = nested if isinstance(nested, dict) else body
                start = item.get("start_time_utc") or item.get("start_time")
                return AppointmentState(
                    True, zenoti._status(item.get("status")).value, _when(start)
                )
            source = fhir_source(vendor, integration.base_url, creds, http)
            if source is None:
                raise ApplicationError("no base_url", type="NotSupported", non_retryable=True)
            raw = await source.appointment(inp.appointment_id)
            if raw is None:
                return AppointmentState(found=False)
            events = fhir.appointment_events([raw], source.version)
            event = events[0]
            status_value = event.status.value if event.status else None
            return AppointmentState(True, status_value, event.appointment_at)

    @activity.defn(name="emr_consult_outcome")
    async def consult_outcome(self, inp: ConsultCheckInput) -> AppointmentState:
        """Ask the EMR what became of the journey's consult (its latest appointment we heard
        of): found=False when the journey's bookings did not come from an EMR."""
        latest = await asyncio.to_thread(self._latest_appointment, inp.journey_id)
        if latest is None:
            return AppointmentState(found=False)
        integration_id, appointment_id = latest
        return await self.read_appointment(ReadAppointmentInput(integration_id, appointment_id))

    def _latest_appointment(self, journey_id: str) -> tuple[str, str] | None:
        with session_scope(self._engine) as session:
            row = session.exec(
                select(EmrAppointment)
                .where(EmrAppointment.journey_id == uuid.UUID(journey_id))
                .order_by(col(EmrAppointment.updated_at).desc())
            ).first()
            return (str(row.integration_id), row.vendor_appointment_id) if row else None

    @activity.defn(name="emr_find_or_create_patient")
    async def find_or_create_patient(self, inp: PatientLinkInput) -> PatientLinkResult:
        """Our patient's id in the EMR: the stored link, else a search by phone and email,
        else a new EMR patient. FHIR sources, Zenoti (its `center_id` credential says where new
        guests go) and Boulevard (clients query, createClient)."""
        loaded = await asyncio.to_thread(self._load, inp.integration_id)
        if loaded is None:
            raise ApplicationError("integration inactive", type="NotSupported", non_retryable=True)
        integration, creds = loaded

        def existing() -> tuple[str | None, Patient | None]:
            with session_scope(self._engine) as session:
                patient = session.get(Patient, uuid.UUID(inp.patient_id))
                if patient is None or patient.practice_id != integration.practice_id:
                    return None, None
                link = session.exec(
                    select(PatientExternalId)
                    .where(PatientExternalId.integration_id == integration.id)
                    .where(PatientExternalId.patient_id == patient.id)
                ).first()
                session.expunge(patient)
                return (link.vendor_patient_id if link else None), patient

        linked, patient = await asyncio.to_thread(existing)
        if patient is None or patient.erased_at is not None:
            raise ApplicationError("no such patient", type="NotSupported", non_retryable=True)
        if linked is not None:
            return PatientLinkResult(linked, created=False)
        vendor = Vendor(integration.vendor)
        async with self._http() as http:
            if vendor is Vendor.BOULEVARD:
                vendor_id, created = await boulevard.BoulevardClient(
                    http, integration.base_url, creds
                ).find_or_create_client(
                    patient.phone, patient.email, patient.first_name, patient.last_name
                )
            elif vendor is Vendor.ZENOTI and creds.get("center_id"):
                vendor_id, created = await zenoti.ZenotiClient(
                    http, integration.base_url, creds
                ).find_or_create_guest(
                    creds["center_id"],
                    patient.phone,
                    patient.email,
                    patient.first_name,
                    patient.last_name,
                )
            else:
                source = fhir_source(vendor, integration.base_url, creds, http)
                if source is None:
                    raise ApplicationError(
                        f"find-or-create not built for {integration.vendor}",
                        type="NotSupported",
                        non_retryable=True,
                    )
                vendor_id, created = await source.find_or_create_patient(
                    patient.phone, patient.email, patient.first_name, patient.last_name
                )

        def link() -> None:
            with session_scope(self._engine) as session:
                session.add(
                    PatientExternalId(
                        integration_id=integration.id,
                        patient_id=patient.id,
                        vendor_patient_id=vendor_id,
                    )
                )
                session.commit()

        await asyncio.to_thread(link)
        return PatientLinkResult(vendor_id, created)

    @activity.defn(name="emr_booking_link")
    def booking_link(self, inp: BookingLinkInput) -> BookingLink:
        """The link a message offers for booking: the integration's template (with the
        patient's EMR id when the template wants it and we know it), else the practice's."""
        with session_scope(self._engine) as session:
            integration = session.get(Integration, uuid.UUID(inp.integration_id))
            if integration is None:
                raise ApplicationError("no integration", type="NotSupported", non_retryable=True)
            practice = session.get(Practice, integration.practice_id)
            assert practice is not None
            template = integration.booking_url
            if not template:
                return BookingLink(practice.booking_url)
            if "{vendor_patient_id}" not in template:
                return BookingLink(template)
            link = session.exec(
                select(PatientExternalId)
                .where(PatientExternalId.integration_id == integration.id)
                .where(PatientExternalId.patient_id == uuid.UUID(inp.patient_id))
            ).first()
            if link is None:
                return BookingLink(practice.booking_url)
            return BookingLink(template.replace("{vendor_patient_id}", link.vendor_patient_id))


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
