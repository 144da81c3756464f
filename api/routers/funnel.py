"""The lead-to-revenue map: `GET /v1/funnel` (JSON), the dashboard page (HTML, server-rendered)
and audit mode's import of a practice's historical export (docs/funnel.md).

The map is aggregates only — counts, durations, money — so neither the JSON nor the page can
carry PHI. The page is opened with the practice key (header) or a short-lived signed link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.audit import Action, add_audit
from api.authz import Permission
from api.deps import EngineDep, Principal, SessionDep, SettingsDep, _unauthorized, require
from api.errors import field_error
from funnel import history, live, replay
from funnel.dashboard import render
from funnel.metrics import FunnelData, report
from models.enums import RevenueLine
from models.tables import Practice
from runtime.db import session_scope
from runtime.settings import Settings

router = APIRouter(tags=["funnel"])

IMPORTS_PATH = "/v1/history/imports"
DEFAULT_PERIOD = timedelta(days=90)
LINK_TTL = timedelta(minutes=15)
Source = Literal["live", "history"]

Reader = Annotated[Principal, Depends(require(Permission.FUNNEL_READ))]
Importer = Annotated[Principal, Depends(require(Permission.HISTORY_IMPORT))]

INDUSTRY = {
    "inquiries_lost": "40-60% of inquiries lost",
    "no_show_or_cancel": "~22% no-show or cancel",
    "never_rebook": "40-50% never rebook",
}


def _bound(value: datetime | None, default: datetime) -> datetime:
    if value is None:
        return default
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """[from, to): a date means its UTC midnight; the default is the last 90 days."""
    now = datetime.now(UTC)
    to = _bound(end, now)
    try:
        frm = _bound(start, to - DEFAULT_PERIOD)
    except OverflowError:  # `to` near year 1: there is no period before it
        raise field_error("to", "out of range", where="query") from None
    if frm >= to:
        raise field_error("to", "must be after from", where="query")
    return frm, to


def load_data(session: Session, practice_id: uuid.UUID, source: Source) -> FunnelData:
    if source == "history":
        return replay.load(session, practice_id)
    return live.load(session, practice_id)


def build(
    engine: Any,
    practice: Practice,
    source: Source,
    frm: datetime,
    to: datetime,
    line: RevenueLine | None,
) -> dict[str, Any]:
    with session_scope(engine) as session:
        data = load_data(session, practice.id, source)
    body = report(data, frm, to, line.value if line else None)
    lines = [line.value] if line else list(practice.revenue_lines)
    return {
        "source": source,
        "from": frm.isoformat(),
        "to": to.isoformat(),
        "revenue_line": line.value if line else None,
        **body,
        "by_line": {name: {"stages": report(data, frm, to, name)["stages"]} for name in lines},
        "industry": INDUSTRY,
    }


# A date (2025-01-01) is that day's UTC midnight; a time without a zone is UTC.
FromQ = Annotated[datetime | None, Query(alias="from")]
ToQ = Annotated[datetime | None, Query(alias="to")]


@router.get("/v1/funnel")
async def get_funnel(
    principal: Reader,
    engine: EngineDep,
    frm: FromQ = None,
    to: ToQ = None,
    revenue_line: RevenueLine | None = None,
    source: Source = "live",
) -> dict[str, Any]:
    """The eight-stage map for [from, to): `source=live` (journeys) or `history` (imports)."""
    start, end = period(frm, to)
    assert principal.practice is not None
    return await run_in_threadpool(
        build, engine, principal.practice, source, start, end, revenue_line
    )


# ---- the dashboard --------------------------------------------------------------------------


def _link_key(settings: Settings) -> bytes:
    # Derived from the admin key (a production secret): no second secret to manage; rotating
    # the admin key voids every outstanding link, which is what one wants then anyway.
    return hmac.new(settings.admin_api_key.encode(), b"dashboard-link/v1", hashlib.sha256).digest()


def sign_link(settings: Settings, practice_id: uuid.UUID, expires: int) -> str:
    payload = f"{practice_id}.{expires}"
    mac = hmac.new(_link_key(settings), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify_link(settings: Settings, token: str) -> uuid.UUID | None:
    parts = token.split(".")
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()) or len(parts[1]) > 12:
        return None
    try:
        practice_id = uuid.UUID(parts[0])
    except ValueError:
        return None
    expected = sign_link(settings, practice_id, int(parts[1]))
    if not hmac.compare_digest(expected.encode(), token.encode()):
        return None
    if int(parts[1]) < time.time():
        return None
    return practice_id


_bearer = HTTPBearer(auto_error=False)


async def dashboard_practice(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> Practice:
    """A signed link (`token`) or the practice key in the Authorization header."""
    if token is not None:
        practice_id = verify_link(settings, token)
        practice = session.get(Practice, practice_id) if practice_id else None
        if practice is None:
            raise _unauthorized()
        return practice
    credentials = await _bearer(request)
    if credentials is None or not credentials.credentials:
        raise _unauthorized()
    principal = require(Permission.FUNNEL_READ)(request, credentials.credentials, settings, session)
    assert principal.practice is not None
    return principal.practice


@router.get("/v1/dashboard", response_class=HTMLResponse)
async def dashboard(
    practice: Annotated[Practice, Depends(dashboard_practice)],
    engine: EngineDep,
    frm: FromQ = None,
    to: ToQ = None,
    source: Source = "live",
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The map as a page: stages and their leaks by line, industry figures beside them, the
    speed-to-lead histogram and the revenue automation recovered."""
    start, end = period(frm, to)
    body = await run_in_threadpool(build, engine, practice, source, start, end, None)
    # Beside each stage, the other source's leak: "before automation" next to "now". History
    # is compared over all of its time (an export's period rarely matches the live one).
    other: Source = "history" if source == "live" else "live"
    other_start = datetime(2000, 1, 1, tzinfo=UTC) if other == "history" else start
    compare = await run_in_threadpool(build, engine, practice, other, other_start, end, None)
    html = render(practice.name, body, token=token, compare=compare)
    # Aggregates only, but the page is the practice's: never cached by a shared proxy.
    return HTMLResponse(html, headers={"Cache-Control": "private, no-store"})


class DashboardLink(BaseModel):
    url: str
    expires_at: datetime


@router.post("/v1/dashboard/links", response_model=DashboardLink, status_code=201)
def dashboard_link(principal: Reader, settings: SettingsDep) -> DashboardLink:
    """A link to the dashboard that works without the key for 15 minutes (to open in a browser)."""
    expires = int(time.time() + LINK_TTL.total_seconds())
    token = sign_link(settings, principal.practice_id, expires)
    return DashboardLink(
        url=f"/v1/dashboard?token={token}", expires_at=datetime.fromtimestamp(expires, UTC)
    )


# ---- audit mode: importing history -----------------------------------------------------------


class RowErrorOut(BaseModel):
    row: int
    field: str
    msg: str


class ImportOut(BaseModel):
    import_id: uuid.UUID
    kind: str
    preset: str
    rows: int
    imported: int
    duplicates: int
    rejected: int
    patients_linked: int
    errors: list[RowErrorOut]


def _overrides(mapping: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in mapping:
        name, sep, header = item.partition(":")
        if not sep or not header.strip():
            raise field_error("map", "use field:Header", where="query")
        out[name.strip()] = header.strip()
    return out


@router.post(IMPORTS_PATH, response_model=ImportOut, status_code=status.HTTP_201_CREATED)
async def import_history(
    request: Request,
    principal: Importer,
    engine: EngineDep,
    kind: Annotated[Literal["leads", "appointments", "treatments"], Query()],
    preset: Annotated[str, Query(max_length=20)] = "generic",
    mapping: Annotated[list[str], Query(alias="map", max_length=20)] = [],  # noqa: B006
) -> ImportOut:
    """A CSV export (`Content-Type: text/csv`, UTF-8) of `kind`, in our format or an EMR's
    (`preset`). Rows with errors are skipped and reported by line and field; the rest import.
    Importing the same rows again adds nothing."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise field_error("file", "not UTF-8 text") from None
    practice = principal.practice
    assert practice is not None
    overrides = _overrides(mapping)
    try:
        # Parsing a whole export is CPU work: off the event loop.
        parsed = await run_in_threadpool(
            history.parse, kind, preset, text, practice.timezone, overrides
        )
    except history.ImportRefused as exc:
        where = "query" if exc.field in ("kind", "preset") else "body"
        raise field_error(exc.field, exc.msg, where=where) from None

    def write() -> history.Stored:
        with session_scope(engine) as session:
            stored = history.store(session, practice, parsed)
            add_audit(session, principal, Action.HISTORY_IMPORT, "history_import", stored.import_id)
            session.commit()
            return stored

    stored = await run_in_threadpool(write)
    return ImportOut(
        import_id=stored.import_id,
        kind=kind,
        preset=preset,
        rows=stored.rows,
        imported=stored.imported,
        duplicates=stored.duplicates,
        rejected=stored.rejected,
        patients_linked=stored.patients_linked,
        errors=[RowErrorOut(row=e.row, field=e.field, msg=e.msg) for e in parsed.errors],
    )
