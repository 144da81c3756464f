"""Audit mode's import: a practice's historical export (leads, appointments, treatments) as CSV,
in our documented format or an EMR's (a column preset), into the history tables — apart from
live journeys (docs/funnel.md, "Importing history").

Errors name the row (its line in the file) and the field, never the value: an export is PHI."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, select

from api.intake import find_patient_by_contact
from api.services import normalize_interest, resolve_interest
from models.enums import RevenueLine
from models.tables import (
    HistoryImport,
    HistoryPatient,
    HistoryRecord,
    Patient,
    Practice,
)

KINDS = ("leads", "appointments", "treatments")
RECORD_KIND = {"leads": "lead", "appointments": "appointment", "treatments": "treatment"}
MAX_ERRORS = 100  # reported per import; the count of rejected rows is always complete

# Our own format: field -> required? (per kind). Columns not listed are ignored.
FIELDS: dict[str, dict[str, bool]] = {
    "leads": {
        "patient_id": True,
        "received_at": True,
        "interest": True,
        "lead_id": False,
        "channel": False,
        "first_name": False,
        "last_name": False,
        "phone": False,
        "email": False,
        "sms_consent": False,
        "email_consent": False,
        "first_response_at": False,
        "referred_by": False,
    },
    "appointments": {
        "patient_id": True,
        "scheduled_at": True,
        "status": True,
        "interest": True,
        "appointment_id": False,
        "booked_at": False,
    },
    "treatments": {
        "patient_id": True,
        "performed_at": True,
        "interest": True,
        "amount": False,
        "treatment_id": False,
    },
}
# Contact columns any kind may carry (an EMR's appointment or sales export often has them):
# they make the patient reachable for bulk enrollment.
CONTACT = ("first_name", "last_name", "phone", "email", "sms_consent", "email_consent")
for _kind in ("appointments", "treatments"):
    FIELDS[_kind].update(dict.fromkeys(CONTACT, False))

# Column presets: our field -> the headers an EMR's export uses for it (matched without case,
# spaces, '_' or '#'). Built from the vendors' public report/export descriptions and common
# exports we have seen described; none was checked against a real file of each vendor, so
# `--map field=Header` (API: map=field:Header) overrides any of them.
PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "generic": {},
    "boulevard": {
        "patient_id": ("Client ID", "Client Id"),
        "received_at": ("Created At", "Client Created At"),
        "scheduled_at": ("Appointment Start", "Start Time", "Appointment Date"),
        "booked_at": ("Booked At", "Created At"),
        "status": ("Appointment Status", "State", "Status"),
        "interest": ("Service", "Service Name", "Services"),
        "performed_at": ("Appointment Start", "Sale Date", "Closed At"),
        "amount": ("Net Sales", "Total", "Price"),
        "appointment_id": ("Appointment ID",),
        "treatment_id": ("Sale ID", "Line Item ID"),
        "phone": ("Mobile Phone", "Phone"),
        "email": ("Email",),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
    },
    "zenoti": {
        "patient_id": ("Guest Code", "Guest Id", "Guest ID"),
        "received_at": ("Created Date", "Lead Created Date", "Guest Created Date"),
        "scheduled_at": ("Start Time", "Appointment Date", "Start Date"),
        "booked_at": ("Booked On", "Created Date"),
        "status": ("Status", "Appointment Status"),
        "interest": ("Service Name", "Service", "Item Name"),
        "performed_at": ("Invoice Date", "Sale Date", "Start Time"),
        "amount": ("Final Sale Price", "Sales (Inc. Tax)", "Net Sales", "Collected"),
        "appointment_id": ("Appointment Id", "Appointment Group Id"),
        "treatment_id": ("Invoice No", "Invoice Item Id"),
        "phone": ("Mobile Number", "Mobile Phone"),
        "email": ("Email", "Email Id"),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "channel": ("Lead Source", "Source"),
    },
    "patientnow": {
        "patient_id": ("Patient ID", "Patient #", "Patient Number"),
        "received_at": ("Lead Date", "Date Entered", "Inquiry Date"),
        "scheduled_at": ("Appt Date", "Appointment Date"),
        "booked_at": ("Date Booked", "Date Scheduled"),
        "status": ("Appt Status", "Status"),
        "interest": ("Procedure", "Procedure Interest", "Service"),
        "performed_at": ("Service Date", "Procedure Date", "Date of Service"),
        "amount": ("Amount", "Total Charges", "Revenue"),
        "phone": ("Cell Phone", "Mobile", "Phone"),
        "email": ("Email",),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "channel": ("Lead Source", "Source"),
        "referred_by": ("Referred By Patient ID", "Referring Patient"),
    },
    "nextech": {
        "patient_id": ("Patient ID", "Patient Number", "UserDefinedID"),
        "received_at": ("Inquiry Date", "Lead Date", "First Contact Date"),
        "scheduled_at": ("Appointment Date", "Appt Date", "Start Time"),
        "booked_at": ("Date Scheduled", "Created Date"),
        "status": ("Show State", "Appointment Status", "Status"),
        "interest": ("Purpose", "Procedure", "Appointment Type"),
        "performed_at": ("Service Date", "Date of Service", "Bill Date"),
        "amount": ("Amount", "Charge Amount", "Total"),
        "phone": ("Mobile Phone", "Cell Phone", "Home Phone"),
        "email": ("Email", "Email Address"),
        "first_name": ("First Name", "First"),
        "last_name": ("Last Name", "Last"),
        "channel": ("Referral Source", "Lead Source"),
    },
    "modmed": {
        "patient_id": ("MRN", "Patient ID", "Patient MRN"),
        "received_at": ("Lead Created", "Created Date", "Date Created"),
        "scheduled_at": ("Appointment Date", "Appointment Date/Time", "Start"),
        "booked_at": ("Scheduled Date", "Created Date"),
        "status": ("Appointment Status", "Status"),
        "interest": ("Visit Type", "Appointment Type", "Procedure", "Product"),
        "performed_at": ("Date of Service", "DOS", "Service Date"),
        "amount": ("Charges", "Total Charges", "Amount"),
        "phone": ("Mobile Phone", "Cell Phone", "Phone"),
        "email": ("Email",),
        "first_name": ("First Name", "Patient First Name"),
        "last_name": ("Last Name", "Patient Last Name"),
    },
    "4d": {
        "patient_id": ("Patient ID", "Chart Number", "Patient Number"),
        "received_at": ("Lead Date", "Inquiry Date", "Date Added"),
        "scheduled_at": ("Appointment Date", "Appt Date", "Date"),
        "booked_at": ("Date Booked", "Date Made"),
        "status": ("Appointment Status", "Status"),
        "interest": ("Procedure", "Service", "Appointment Type"),
        "performed_at": ("Service Date", "Procedure Date", "Date"),
        "amount": ("Fee", "Amount", "Total"),
        "phone": ("Cell Phone", "Mobile", "Phone"),
        "email": ("Email",),
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "channel": ("Lead Source", "Source"),
    },
}

STATUSES: dict[str, tuple[str, ...]] = {
    "completed": (
        "completed",
        "complete",
        "checked out",
        "checkedout",
        "checked in",
        "arrived",
        "attended",
        "show",
        "showed",
        "kept",
        "closed",
        "seen",
        "finished",
    ),
    "no_show": ("no show", "noshow", "no-show", "missed", "did not show", "dns"),
    "cancelled": (
        "cancelled",
        "canceled",
        "cancel",
        "late cancel",
        "late cancellation",
        "cancelled late",
    ),
    "booked": ("booked", "scheduled", "confirmed", "pending", "unconfirmed", "reserved"),
}
_STATUS_OF = {word: status for status, words in STATUSES.items() for word in words}
_TRUE = {"1", "true", "yes", "y", "t", "x", "opted in", "opt-in"}
DATE_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%Y-%m-%d")


@dataclass(frozen=True)
class RowError:
    row: int  # the line in the file (the header is line 1)
    field: str
    msg: str


class ImportRefused(ValueError):
    """The file as a whole cannot be read (a required column missing, not CSV, not UTF-8).
    `field` names what is wrong; the message never quotes the file."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(msg)
        self.field = field
        self.msg = msg


@dataclass
class ParsedRow:
    row: int
    values: dict[str, Any]


@dataclass
class Parsed:
    kind: str
    preset: str
    total: int = 0
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rejected: int = 0


def _norm(header: str) -> str:
    return "".join(ch for ch in header.lower() if ch.isalnum())


def column_map(
    kind: str, preset: str, headers: list[str], overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """Our field -> the file's header, for the fields the file has. Our own names always work."""
    if kind not in KINDS:
        raise ImportRefused("kind", f"kind must be one of {', '.join(KINDS)}")
    if preset not in PRESETS:
        raise ImportRefused("preset", f"preset must be one of {', '.join(PRESETS)}")
    present = {_norm(h): h for h in headers if h}
    found: dict[str, str] = {}
    for name in FIELDS[kind]:
        candidates = (name, *PRESETS[preset].get(name, ()))
        if overrides and name in overrides:
            candidates = (overrides[name],)
        for candidate in candidates:
            if _norm(candidate) in present:
                found[name] = present[_norm(candidate)]
                break
    missing = [n for n, required in FIELDS[kind].items() if required and n not in found]
    if missing:
        raise ImportRefused(missing[0], "required column missing from the file's header")
    return found


def parse_time(value: str, zone: ZoneInfo) -> datetime:
    """ISO 8601 (with or without zone) or the US exports' MM/DD/YYYY [HH:MM]; a time without a
    zone is the practice's local time."""
    text = value.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError("not a date/time (ISO 8601 or MM/DD/YYYY [HH:MM])")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def resolve_service(value: str) -> tuple[RevenueLine, str | None] | None:
    """A line or catalog service, also inside an export's free text ("Botox Cosmetic 20u")."""
    found = resolve_interest(value)
    if found is not None:
        return found
    words = normalize_interest(value).split("_")
    for size in (3, 2, 1):
        for i in range(len(words) - size + 1):
            found = resolve_interest("_".join(words[i : i + size]))
            if found is not None:
                return found
    return None


def _amount(value: str) -> float:
    text = value.strip().replace("$", "").replace(",", "")
    negative = text.startswith("(") and text.endswith(")")
    number = float(text.strip("()"))
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError
    return -number if negative else number


def _convert(name: str, raw: str, zone: ZoneInfo) -> Any:
    """One field's value, or ValueError with a message that does not quote it."""
    if name in ("received_at", "scheduled_at", "booked_at", "performed_at", "first_response_at"):
        return parse_time(raw, zone)
    if name == "interest":
        found = resolve_service(raw)
        if found is None:
            raise ValueError("not a revenue line or a known service")
        return found
    if name == "status":
        status = _STATUS_OF.get(" ".join(raw.lower().replace("_", " ").split()))
        if status is None:
            raise ValueError(f"unknown status (use {', '.join(STATUSES)})")
        return status
    if name == "amount":
        try:
            return _amount(raw)
        except ValueError:
            raise ValueError("not an amount") from None
    if name in ("sms_consent", "email_consent"):
        return raw.strip().lower() in _TRUE
    if name == "phone":
        try:
            number = phonenumbers.parse(raw, "US")
        except phonenumbers.NumberParseException:
            raise ValueError("not a valid phone number") from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError("not a valid phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if name == "email":
        try:
            return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            raise ValueError("not a valid email address") from None
    text = raw.strip()
    if len(text) > 100:
        raise ValueError("longer than 100 characters")
    return text


def read_rows(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        headers = list(reader.fieldnames or [])
    except csv.Error:
        raise ImportRefused("file", "not a readable CSV file") from None
    if not headers:
        raise ImportRefused("file", "the file has no header row")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error:
            raise ImportRefused(
                "file", f"not a readable CSV file at line {reader.line_num}"
            ) from None

    return headers, rows()


def parse(
    kind: str,
    preset: str,
    text: str,
    timezone: str,
    overrides: dict[str, str] | None = None,
) -> Parsed:
    headers, rows = read_rows(text)
    columns = column_map(kind, preset, headers, overrides)
    zone = ZoneInfo(timezone)
    out = Parsed(kind, preset)
    for line, raw in rows:
        out.total += 1
        values: dict[str, Any] = {}
        errors: list[RowError] = []
        for name, header in columns.items():
            cell = raw.get(header)
            if cell is None or not str(cell).strip():
                if FIELDS[kind][name]:
                    errors.append(RowError(line, name, "required"))
                continue
            try:
                values[name] = _convert(name, str(cell), zone)
            except ValueError as exc:
                errors.append(RowError(line, name, str(exc)))
        if errors:
            out.rejected += 1
            out.errors.extend(errors[: max(0, MAX_ERRORS - len(out.errors))])
            continue
        out.rows.append(ParsedRow(line, values))
    return out


def _record_key(kind: str, v: dict[str, Any]) -> str:
    """The row's identity: the export's own id when it has one, else its content."""
    own = v.get({"leads": "lead_id", "appointments": "appointment_id"}.get(kind, "treatment_id"))
    at = v.get("received_at") or v.get("scheduled_at") or v.get("performed_at")
    line, service = v["interest"]
    parts = [kind, v["patient_id"], own or "", "" if own else f"{at}|{line}|{service}"]
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def patient_ref(practice_id: uuid.UUID, export_id: str) -> str:
    """The export's patient id (an MRN, say: an identifier) is kept only as a hash: enough to
    join a patient's leads, appointments and treatments, useless to anyone reading the table."""
    return hashlib.sha256(f"{practice_id}:{export_id}".encode()).hexdigest()


@dataclass
class Stored:
    import_id: uuid.UUID
    rows: int
    imported: int
    duplicates: int
    rejected: int
    patients_linked: int


Progress = Callable[[int], None]
CHUNK = 500


def store(
    session: Session,
    practice: Practice,
    parsed: Parsed,
    progress: Progress | None = None,
) -> Stored:
    """Writes the parsed rows (a repeated row is skipped), committing in chunks."""
    batch = HistoryImport(
        practice_id=practice.id,
        kind=parsed.kind,
        preset=parsed.preset,
        rows=parsed.total,
        rejected=parsed.rejected,
    )
    session.add(batch)
    session.flush()
    patients = {
        hp.ref: hp
        for hp in session.exec(
            select(HistoryPatient).where(HistoryPatient.practice_id == practice.id)
        )
    }
    keys = set(
        session.exec(select(HistoryRecord.key).where(HistoryRecord.practice_id == practice.id))
    )
    imported = duplicates = linked = 0
    for n, row in enumerate(parsed.rows, start=1):
        v = row.values
        ref = patient_ref(practice.id, v["patient_id"])
        hp = patients.get(ref)
        if hp is None:
            hp = HistoryPatient(practice_id=practice.id, ref=ref)
            patients[hp.ref] = hp
            session.add(hp)
            session.flush()
        if hp.patient_id is None and (v.get("phone") or v.get("email")):
            hp.patient_id = _patient_for(session, practice, v).id
            session.add(hp)
            linked += 1
        key = _record_key(parsed.kind, v)
        if key in keys:
            duplicates += 1
        else:
            keys.add(key)
            line, service = v["interest"]
            session.add(
                HistoryRecord(
                    practice_id=practice.id,
                    import_id=batch.id,
                    history_patient_id=hp.id,
                    key=key,
                    kind=RECORD_KIND[parsed.kind],
                    revenue_line=line.value,
                    service=service,
                    at=v.get("received_at") or v.get("scheduled_at") or v["performed_at"],
                    booked_at=v.get("booked_at"),
                    status=v.get("status"),
                    responded_at=v.get("first_response_at"),
                    referred=bool(v.get("referred_by")),
                    amount=v.get("amount"),
                )
            )
            imported += 1
        if n % CHUNK == 0:
            session.commit()
            if progress is not None:
                progress(CHUNK)
    batch.imported = imported
    session.add(batch)
    session.commit()
    if progress is not None:
        progress(len(parsed.rows) % CHUNK)
    return Stored(batch.id, parsed.total, imported, duplicates, parsed.rejected, linked)


def _patient_for(session: Session, practice: Practice, v: dict[str, Any]) -> Patient:
    """The practice's patient with this phone or email, or a new one. Consent only from the
    export's consent columns: imported patients get marketing only if they opted in."""
    found = find_patient_by_contact(session, practice, v.get("phone"), v.get("email"))
    if found is not None:
        return found
    patient = Patient(
        practice_id=practice.id,
        timezone=practice.timezone,
        state=practice.state,
        first_name=v.get("first_name") or None,
        last_name=v.get("last_name") or None,
        phone=v.get("phone"),
        email=v.get("email"),
        sms_consent=bool(v.get("sms_consent")),
        email_consent=bool(v.get("email_consent")),
    )
    session.add(patient)
    session.flush()
    return patient
