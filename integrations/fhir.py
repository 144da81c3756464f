"""Generic FHIR adapter: Appointment (+ included Patient) resources -> normalized events.

Models come from `fhir.resources` (R4B for R4 servers: Appointment and Patient are unchanged
between R4 and R4B; STU3 for Nextech). A FHIR Appointment is a snapshot, so every one becomes an
APPOINTMENT_OBSERVED with our status; ingest works out what changed since the last snapshot."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from integrations.model import ApptStatus, Kind, NormalizedEvent, PatientRef, PayloadError

FhirVersion = Literal["R4", "STU3"]

# FHIR R4 Appointment.status (STU3 has the same codes minus checked-in and waitlist).
STATUS: dict[str, ApptStatus] = {
    "proposed": ApptStatus.TENTATIVE,
    "pending": ApptStatus.TENTATIVE,
    "waitlist": ApptStatus.TENTATIVE,
    "booked": ApptStatus.BOOKED,
    "arrived": ApptStatus.ARRIVED,
    "checked-in": ApptStatus.ARRIVED,
    "fulfilled": ApptStatus.COMPLETED,
    "cancelled": ApptStatus.CANCELLED,
    "entered-in-error": ApptStatus.CANCELLED,
    "noshow": ApptStatus.NO_SHOW,
}


def _models(version: FhirVersion) -> tuple[Any, Any, Any]:
    if version == "STU3":
        from fhir.resources.STU3.appointment import Appointment
        from fhir.resources.STU3.bundle import Bundle
        from fhir.resources.STU3.patient import Patient
    else:
        from fhir.resources.R4B.appointment import Appointment  # type: ignore[assignment]
        from fhir.resources.R4B.bundle import Bundle  # type: ignore[assignment]
        from fhir.resources.R4B.patient import Patient  # type: ignore[assignment]
    return Appointment, Bundle, Patient


def _parse(model: Any, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Field paths only: a FHIR validation message may quote the value (PHI).
        where = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})[:5]
        kind = data.get("resourceType")
        kind = kind if kind in ("Appointment", "Patient", "Bundle") else "resource"
        raise PayloadError(f"invalid FHIR {kind}: {', '.join(where)}") from None


def resources(
    payload: dict[str, Any], version: FhirVersion = "R4", *, strict: bool = True
) -> list[dict[str, Any]]:
    """The resources of a Bundle (searchset or subscription notification), or the one given.
    `strict=False` (polling) checks each resource on its own later instead of the whole bundle:
    one bad resource must not hold back the rest, or the cursor for ever."""
    if payload.get("resourceType") == "Bundle":
        if strict:
            _, bundle_model, _ = _models(version)
            _parse(bundle_model, payload)
        entries = payload.get("entry")
        listed = entries if isinstance(entries, list) else []
        return [
            e["resource"]
            for e in listed
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [payload]


def next_link(payload: dict[str, Any]) -> str | None:
    for link in payload.get("link") or []:
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _patient_ref(patient: Any | None, reference: str | None) -> PatientRef:
    vendor_id = reference.split("/")[-1] if reference else None
    ref = PatientRef(vendor_id=vendor_id)
    if patient is None:
        return ref
    ref.vendor_id = patient.id or vendor_id
    for name in patient.name or []:
        ref.first_name = ref.first_name or (name.given[0] if name.given else None)
        ref.last_name = ref.last_name or name.family
    for telecom in patient.telecom or []:
        if telecom.system == "phone" and telecom.value and telecom.use != "work":
            ref.phone = ref.phone or telecom.value
        elif telecom.system == "email" and telecom.value:
            ref.email = ref.email or telecom.value
    return ref


def _services(appointment: Any) -> list[str]:
    found: list[str] = []
    concepts = list(appointment.serviceType or [])
    if appointment.appointmentType is not None:
        concepts.append(appointment.appointmentType)
    for concept in concepts:
        for coding in concept.coding or []:
            found += [v for v in (coding.code, coding.display) if v]
        if concept.text:
            found.append(concept.text)
    return found


def _updated(resource: Any) -> datetime | None:
    meta = resource.meta
    value = meta.lastUpdated if meta is not None else None
    return value if isinstance(value, datetime) else None


def appointment_events(
    items: Iterable[dict[str, Any]], version: FhirVersion = "R4"
) -> list[NormalizedEvent]:
    """One APPOINTMENT_OBSERVED per Appointment; Patients in the same bundle fill in who.
    Raises PayloadError on the first unreadable resource (webhooks: the sender's problem)."""
    events, _ = _appointment_events(list(items), version, strict=True)
    return events


def appointment_events_lenient(
    items: Iterable[dict[str, Any]], version: FhirVersion = "R4"
) -> tuple[list[NormalizedEvent], int]:
    """As `appointment_events`, skipping unreadable resources: (events, how many skipped)."""
    return _appointment_events(list(items), version, strict=False)


def _appointment_events(
    items: list[dict[str, Any]], version: FhirVersion, strict: bool
) -> tuple[list[NormalizedEvent], int]:
    appointment_model, _, patient_model = _models(version)
    skipped = 0
    patients: dict[str, Any] = {}
    for r in items:
        if r.get("resourceType") == "Patient":
            try:
                patients[f"Patient/{r.get('id')}"] = _parse(patient_model, r)
            except PayloadError:
                if strict:
                    raise
                skipped += 1
    events: list[NormalizedEvent] = []
    for raw in items:
        if raw.get("resourceType") != "Appointment":
            continue
        try:
            events.append(_appointment_event(appointment_model, raw, patients))
        except PayloadError:
            if strict:
                raise
            skipped += 1
    return events, skipped


def _appointment_event(
    appointment_model: Any, raw: dict[str, Any], patients: dict[str, Any]
) -> NormalizedEvent:
    appt = _parse(appointment_model, raw)
    reference = next(
        (
            p.actor.reference
            for p in appt.participant or []
            if p.actor is not None and (p.actor.reference or "").startswith("Patient/")
        ),
        None,
    )
    if appt.id is None or reference is None:
        raise PayloadError("Appointment without id or patient participant")
    updated = _updated(appt)
    version_id = appt.meta.versionId if appt.meta is not None else None
    # Without a version or update stamp, the status and start tell snapshots apart.
    stamp = version_id or (updated.isoformat() if updated else f"{appt.status}@{appt.start}")
    return NormalizedEvent(
        kind=Kind.APPOINTMENT_OBSERVED,
        vendor_event_id=f"Appointment/{appt.id}/{stamp}",
        patient=_patient_ref(patients.get(reference), reference),
        occurred_at=updated,
        appointment_id=appt.id,
        appointment_at=appt.start,
        status=STATUS.get(appt.status, ApptStatus.TENTATIVE),
        services=_services(appt),
    )


def last_updated(items: Iterable[dict[str, Any]]) -> datetime | None:
    """The newest meta.lastUpdated among the resources: the polling cursor."""
    newest: datetime | None = None
    for raw in items:
        meta = raw.get("meta")
        stamp = meta.get("lastUpdated") if isinstance(meta, dict) else None
        if not isinstance(stamp, str):
            continue
        try:
            value = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            continue
        if value.tzinfo is not None and (newest is None or value > newest):
            newest = value
    return newest
