"""The library a practice gets on day one (GET /v1/library), its edits to it, and the preview of
a track for a scenario (GET /v1/tracks/{id}/preview).

Every edit is validated against the library when saved — a rhythm that breaks a series, a step
reference that does not exist, a template that does not render — and answered with a 422 naming
the field; the practice's revision goes up by one, and journeys pick the edit up from their next
cycle (each cycle freezes the track it started with)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from activities.library import practice_library
from activities.templates import TEMPLATES, validate_override
from api.authz import Permission
from api.deps import Principal, SessionDep, require
from api.errors import field_error, not_found
from api.library_schemas import (
    LibraryOut,
    LibrarySettingsIn,
    PracticeEdits,
    PreviewOut,
    SequenceOut,
    ServiceOut,
    ServiceRhythmIn,
    TemplateEditIn,
    TemplateOut,
    TimelineEntryOut,
    TrackEditIn,
    TrackOut,
)
from api.scenario import ScenarioError, parse_events
from models.enums import Channel
from models.tables import PracticeLibrary as PracticeLibraryRow
from models.tables import utcnow
from workflows.catalog import (
    DEFAULT_SERVICE,
    SERVICES,
    find_service,
    validate_rhythm,
    with_overrides,
)
from workflows.library import (
    LIBRARY_VERSION,
    build_track,
    default_track,
    library_sequences,
    resolve_track,
    templates_used,
    track_ids,
)
from workflows.preview import Scenario, preview

router = APIRouter(tags=["library"])

Reader = Annotated[Principal, Depends(require(Permission.LIBRARY_READ))]
Editor = Annotated[Principal, Depends(require(Permission.LIBRARY_EDIT))]
MAX_OFFSET = 5 * 365 * 24 * 60


# ---- the library -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _library() -> LibraryOut:
    """The built-in library: pure data, built once per process rather than per request."""
    tracks = [t for t in (default_track(tid) for tid in track_ids()) if t is not None]
    sequences = library_sequences(tracks)
    used_by: dict[str, list[str]] = {}
    for seq in sequences.values():
        for step in seq.steps:
            if step.template:
                used_by.setdefault(step.template, [])
                if seq.id not in used_by[step.template]:
                    used_by[step.template].append(seq.id)
    return LibraryOut(
        version=LIBRARY_VERSION,
        counts={
            "services": len(SERVICES),
            "tracks": len(tracks),
            "sequences": len(sequences),
            "templates": len(TEMPLATES),
        },
        services=[
            ServiceOut(
                key=s.key,
                name=s.name,
                line=s.line.value,
                family=s.family,
                track=f"{s.line.value}.{s.family}",
                recall_days=s.recall_days,
                min_interval_days=s.min_interval_days,
                series_sessions=s.series_sessions,
                session_interval_days=s.session_interval_days,
                results_check_days=s.results_check_days,
                maintenance_days=s.maintenance_days,
                aliases=list(s.aliases),
            )
            for s in SERVICES.values()
        ],
        tracks=[
            TrackOut(
                id=t.id,
                line=t.line.value,
                family=t.family,
                default_service=DEFAULT_SERVICE[t.family],
                services=[s.key for s in SERVICES.values() if s.family == t.family],
                sequences={purpose: seq.id for purpose, seq in t.sequences.items()},
            )
            for t in tracks
        ],
        sequences=[SequenceOut.of(s) for s in sequences.values()],
        templates=[
            TemplateOut(
                id=tid,
                marketing=tpl.marketing,
                sms=tpl.sms,
                subject=tpl.subject,
                used_by=used_by.get(tid, []),
            )
            for tid, tpl in TEMPLATES.items()
        ],
    )


def _edits(row: PracticeLibraryRow | None) -> PracticeEdits:
    if row is None:
        return PracticeEdits(
            revision=0, show_treatment_names=False, services={}, tracks={}, templates={}
        )
    return PracticeEdits(
        revision=row.revision,
        show_treatment_names=row.show_treatment_names,
        services=row.services,
        tracks=row.tracks,
        templates=row.templates,
    )


@router.get("/v1/library", response_model=LibraryOut)
def get_library(principal: Reader, session: SessionDep) -> LibraryOut:
    """Every service, track, sequence and template a practice gets on day one, and this
    practice's edits to them."""
    edits = _edits(session.get(PracticeLibraryRow, principal.practice_id))
    return _library().model_copy(update={"practice": edits})


# ---- edits -----------------------------------------------------------------------------------


def _row(session: Session, principal: Principal) -> PracticeLibraryRow:
    row = session.get(PracticeLibraryRow, principal.practice_id, with_for_update=True)
    if row is None:
        row = PracticeLibraryRow(practice_id=principal.practice_id)
    return row


def _save(session: Session, row: PracticeLibraryRow) -> PracticeEdits:
    row.revision += 1
    row.updated_at = utcnow()
    session.add(row)
    session.commit()
    session.refresh(row)
    return _edits(row)


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


@router.put("/v1/library/settings", response_model=PracticeEdits)
def put_settings(body: LibrarySettingsIn, principal: Editor, session: SessionDep) -> PracticeEdits:
    """`show_treatment_names`: name the treatment in messages (off by default: PHI-minimal)."""
    row = _row(session, principal)
    row.show_treatment_names = body.show_treatment_names
    return _save(session, row)


@router.put("/v1/library/services/{service_key}", response_model=PracticeEdits)
def put_service(
    service_key: str, body: ServiceRhythmIn, principal: Editor, session: SessionDep
) -> PracticeEdits:
    """Override a service's rhythm: recall interval, series length, package size..."""
    service = find_service(service_key)
    if service is None:
        raise not_found("service")
    row = _row(session, principal)
    changes = body.model_dump(exclude_unset=True)
    merged = {**row.services.get(service.key, {}), **changes}
    merged = {k: v for k, v in merged.items() if v is not None}
    edited = with_overrides(service, merged)
    problems = validate_rhythm(edited)
    missing = sorted(templates_used(build_track(edited.family, edited)) - TEMPLATES.keys())
    if missing:
        problems.append(("series_sessions", f"no library template for this shape: {missing[0]}"))
    if problems:
        field, msg = problems[0]
        raise field_error(field, msg)
    row.services = {**row.services, service.key: merged}
    return _save(session, row)


@router.delete("/v1/library/services/{service_key}", response_model=PracticeEdits)
def delete_service(service_key: str, principal: Editor, session: SessionDep) -> PracticeEdits:
    service = find_service(service_key)
    if service is None:
        raise not_found("service")
    row = _row(session, principal)
    row.services = _without(row.services, service.key)
    return _save(session, row)


def _check_track_edit(tid: str, body: TrackEditIn) -> None:
    track = default_track(tid)
    assert track is not None
    steps = {
        f"{purpose}.{step.key}": (purpose, step)
        for purpose, seq in track.sequences.items()
        for step in seq.steps
    }
    refs = [("disabled", r) for r in body.disabled]
    refs += [("offsets_minutes", r) for r in body.offsets_minutes]
    refs += [("templates", r) for r in body.templates]
    for field, ref in refs:
        if ref not in steps:
            raise field_error(field, f"no step {ref!r} in track {tid}; see GET /v1/library")
        if ref == "new_lead.reply":
            raise field_error(field, "the instant reply to an inquiry cannot be changed here")
    for ref, minutes in body.offsets_minutes.items():
        purpose, _ = steps[ref]
        if not -MAX_OFFSET <= minutes <= MAX_OFFSET:
            raise field_error("offsets_minutes", f"{ref}: at most five years either way")
        if purpose == "consult_reminders" and minutes >= 0:
            raise field_error("offsets_minutes", f"{ref}: a reminder comes before the consult")
        if purpose != "consult_reminders" and minutes < 0:
            raise field_error("offsets_minutes", f"{ref}: must not be negative")
    for ref, template in body.templates.items():
        if template not in TEMPLATES:
            raise field_error("templates", f"{ref}: no template {template!r} in the library")


@router.put("/v1/library/tracks/{track_id}", response_model=PracticeEdits)
def put_track(
    track_id: str, body: TrackEditIn, principal: Editor, session: SessionDep
) -> PracticeEdits:
    """Switch steps off, move them or send another template; replaces earlier edits."""
    if default_track(track_id) is None:
        raise not_found("track")
    _check_track_edit(track_id, body)
    row = _row(session, principal)
    edit = {
        "disabled": sorted(set(body.disabled)),
        "offsets": body.offsets_minutes,
        "templates": body.templates,
    }
    row.tracks = {**row.tracks, track_id: edit}
    return _save(session, row)


@router.delete("/v1/library/tracks/{track_id}", response_model=PracticeEdits)
def delete_track(track_id: str, principal: Editor, session: SessionDep) -> PracticeEdits:
    if default_track(track_id) is None:
        raise not_found("track")
    row = _row(session, principal)
    row.tracks = _without(row.tracks, track_id)
    return _save(session, row)


@router.put("/v1/library/templates/{template_id}", response_model=PracticeEdits)
def put_template(
    template_id: str, body: TemplateEditIn, principal: Editor, session: SessionDep
) -> PracticeEdits:
    """The practice's own wording; checked now (syntax, variables, a trial render, STOP
    language on marketing) so it cannot fail when a message is sent."""
    if template_id not in TEMPLATES:
        raise not_found("template")
    problems = validate_override(template_id, body.sms, body.subject)
    if problems:
        field, msg = problems[0]
        raise field_error(field, msg)
    row = _row(session, principal)
    row.templates = {**row.templates, template_id: {"sms": body.sms, "subject": body.subject}}
    return _save(session, row)


@router.delete("/v1/library/templates/{template_id}", response_model=PracticeEdits)
def delete_template(template_id: str, principal: Editor, session: SessionDep) -> PracticeEdits:
    if template_id not in TEMPLATES:
        raise not_found("template")
    row = _row(session, principal)
    row.templates = _without(row.templates, template_id)
    return _save(session, row)


# ---- preview ---------------------------------------------------------------------------------


@router.get("/v1/tracks/{track_id}/preview", response_model=PreviewOut)
def preview_track(
    track_id: str,
    principal: Reader,
    session: SessionDep,
    events: Annotated[
        str, Query(max_length=4000, description="e.g. booked@3>10,arrived@10,treated@10:botox")
    ] = "",
    service: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[datetime | None, Query(description="the inquiry; default today 09:00")] = None,
    horizon_days: Annotated[int, Query(ge=1, le=3650)] = 400,
    channel: Channel = Channel.SMS,
) -> PreviewOut:
    """The messages a patient would get on this track for a scenario, with this practice's
    edits, time zone and send window: computed by the code the journey runs."""
    track = default_track(track_id)
    if track is None:
        raise not_found("track")
    line = track.line
    chosen = find_service(service) if service else None
    if service and (chosen is None or chosen.family != track.family):
        raise field_error("service", f"not a service of track {track_id}", where="query")
    interest = chosen.key if chosen else DEFAULT_SERVICE[track.family]
    try:
        scenario_events = parse_events(events)
    except ScenarioError as err:
        raise field_error("events", str(err), where="query") from err
    practice = principal.practice
    assert practice is not None
    zone = ZoneInfo(practice.timezone)
    if start is None:
        today = datetime.now(zone).date()
        start = datetime.combine(today, time(9, 0), tzinfo=zone)
    elif start.tzinfo is None:
        start = start.replace(tzinfo=zone)
    edits = practice_library(session.get(PracticeLibraryRow, practice.id))
    scenario = Scenario(
        start=start.astimezone(UTC),
        timezone=practice.timezone,
        state=practice.state,
        events=scenario_events,
        horizon_days=horizon_days,
        channel=channel,
        interest=interest,
    )
    result = preview(scenario, lambda s: resolve_track(line, s or interest, edits))
    return PreviewOut(
        track=result.track.id,
        version=result.track.version,
        service=result.track.service,
        timezone=practice.timezone,
        runs=result.runs,
        ended=result.ended,
        messages=len(result.messages),
        timeline=[
            TimelineEntryOut(
                at=e.at,
                day=e.day,
                local=e.local,
                kind=e.kind,
                what=e.what,
                detail=e.detail,
                cycle=e.cycle,
            )
            for e in result.timeline
        ],
    )
