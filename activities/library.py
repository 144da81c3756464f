"""Resolving a practice's track when a journey's cycle starts: the built-in library with the
practice's saved edits (table practice_library). The result is frozen into the journey, so the
practice's later edits apply from its next cycle."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity

from models.journey_types import ResolveTrackInput
from models.tables import PracticeLibrary as PracticeLibraryRow
from models.track_types import TrackSpec
from workflows.library import PracticeLibrary, TrackOverride, resolve_track


def practice_library(row: PracticeLibraryRow | None) -> PracticeLibrary:
    """The stored edits as the library's override types."""
    if row is None:
        return PracticeLibrary()
    return PracticeLibrary(
        revision=row.revision,
        services={k: dict(v) for k, v in row.services.items()},
        tracks={
            k: TrackOverride(
                disabled=list(v.get("disabled", [])),
                offsets={ref: int(m) for ref, m in v.get("offsets", {}).items()},
                templates=dict(v.get("templates", {})),
            )
            for k, v in row.tracks.items()
        },
    )


def load_practice_library(engine: Engine, practice_id: uuid.UUID) -> PracticeLibrary:
    with Session(engine) as session:
        return practice_library(session.get(PracticeLibraryRow, practice_id))


class LibraryActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn
    def resolve_track(self, inp: ResolveTrackInput) -> TrackSpec:
        edits = load_practice_library(self._engine, uuid.UUID(inp.practice_id))
        return resolve_track(inp.revenue_line, inp.service, edits)
