"""Every ready sequence of the library, run: for each one a scenario that reaches it is
previewed through the journey's state machine, and every step of the sequence must happen, in
order, at its offset (or at the send window's next opening). A sequence nobody can reach, a step
an outcome always cuts off, or a template the library lacks fails here."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from activities.templates import SAMPLE_CONTEXT, TEMPLATES, render
from models.enums import EventType, RevenueLine
from models.track_types import SequenceSpec, TrackSpec
from workflows.catalog import SERVICES
from workflows.library import (
    default_track,
    library_sequences,
    resolve_track,
    track_ids,
)
from workflows.preview import Preview, Scenario, ScenarioEvent, TimelineEntry, preview

TZ = "America/Los_Angeles"
START = datetime(2027, 3, 1, 9, 0, tzinfo=ZoneInfo(TZ)).astimezone(UTC)  # a Monday


def _owner() -> dict[str, TrackSpec]:
    owners: dict[str, TrackSpec] = {}
    for tid in track_ids():
        track = default_track(tid)
        assert track is not None
        for seq in track.sequences.values():
            owners.setdefault(seq.id, track)
    return owners


OWNERS = _owner()
SEQUENCES = library_sequences()


def booked(day: int, for_day: int) -> ScenarioEvent:
    return ScenarioEvent(day, EventType.CONSULT_BOOKED, appointment_day=for_day)


def arrived(day: int) -> ScenarioEvent:
    return ScenarioEvent(day, EventType.ARRIVED, at_time=time(13, 55))


def treatments(track: TrackSpec) -> list[ScenarioEvent]:
    """A whole series (or one visit), each session on the day it is due."""
    service = SERVICES[track.service]
    sessions = max(track.series_sessions, 1)
    gap = service.session_interval_days or 0
    return [
        ScenarioEvent(2 + n * gap, EventType.TREATMENT_COMPLETED, service=service.key)
        for n in range(sessions)
    ]


def scenario_for(purpose: str, track: TrackSpec) -> list[ScenarioEvent]:
    consult = [booked(1, 5)]
    return {
        "new_lead": [],
        "reactivation_cold_lead": [],
        "consult_reminders": [booked(1, 20)],
        "awaiting_outcome": consult,
        "no_show_recovery": [*consult, ScenarioEvent(5, EventType.NO_SHOW, time(14, 30))],
        "cancel_recovery": [*consult, ScenarioEvent(2, EventType.APPOINTMENT_CANCELLED)],
        "quote_follow_up": [booked(1, 3), arrived(3)],
        "reactivation_quiet_quote": [booked(1, 3), arrived(3)],
        "post_treatment": treatments(track),
        "review_referral": treatments(track),
        # Treated once and never again: the recall lapses, or the series is left unfinished.
        "reactivation_lapsed": treatments(track)[:1],
    }[purpose]


def run(track: TrackSpec, events: list[ScenarioEvent]) -> Preview:
    scenario = Scenario(
        start=START,
        timezone=TZ,
        state="CA",
        events=events,
        horizon_days=3 * 365,
        interest=track.service,
    )
    return preview(scenario, lambda s: resolve_track(track.line, s or track.service))


def _expected_steps(seq: SequenceSpec, track: TrackSpec, events: list[ScenarioEvent]) -> list:
    if seq.purpose in ("post_treatment", "review_referral"):
        # Series-open steps run between sessions; series-done steps after the last one.
        wanted = {None, "series_done"} | ({"series_open"} if len(events) > 1 else set())
        if not track.series_sessions:
            wanted = {None}
        return [s for s in seq.steps if s.when in wanted]
    return list(seq.steps)


def test_the_library_is_big_enough() -> None:
    assert len(SEQUENCES) >= 100
    assert len(TEMPLATES) >= 75
    assert {seq.stage for seq in SEQUENCES.values()} >= {
        "speed_to_lead",
        "consult_booked",
        "consult_show",
        "treatment",
        "rebook",
        "reactivation",
        "reviews_referrals",
    }


def _first_visits(result: Preview, running: str) -> dict[str, TimelineEntry]:
    """Each step's first message in the sequence (it may run again in later cycles)."""
    seen: dict[str, TimelineEntry] = {}
    for entry in result.timeline:
        if entry.kind == "message" and entry.detail.startswith(f"{running}."):
            key = entry.detail.split(".", 1)[1].split(" ", 1)[0]
            seen.setdefault(key, entry)
    return seen


@pytest.mark.parametrize("sequence_id", sorted(SEQUENCES))
def test_every_sequence_runs(sequence_id: str) -> None:
    seq = SEQUENCES[sequence_id]
    track = OWNERS[sequence_id]
    # Review and referral asks run inside the post-treatment sequence.
    running = "post_treatment" if seq.purpose == "review_referral" else seq.purpose
    scenarios = [scenario_for(seq.purpose, track)]
    if seq.purpose == "post_treatment" and track.series_sessions:
        # The missed-session nudge needs a patient who does not come back.
        scenarios.append(scenario_for(seq.purpose, track)[:1])
    runs = [run(track, events) for events in scenarios]
    visits = [_first_visits(r, running) for r in runs]
    tasks = {e.what for r in runs for e in r.timeline if e.kind == "task"}
    checks = {e.what for r in runs for e in r.timeline if e.kind == "check"}
    expected = _expected_steps(seq, track, scenarios[0])
    assert expected, "a sequence with nothing to run"
    for step in expected:
        if step.task:
            assert step.task in tasks, step.key
            continue
        if step.check:
            assert step.check in checks, step.key
            continue
        assert step.template in TEMPLATES, step.template
        found = [v[step.key] for v in visits if step.key in v]
        assert found, f"{step.key} never ran"
        assert found[0].what == step.template
        render(step.template, SAMPLE_CONTEXT)
    # Offsets are kept: between two steps of one visit, the gap is the offsets' difference,
    # give or take a send-window deferral (never more than a night and a day).
    timed = [s for s in expected if not s.task and not s.check]
    for a, b in pairwise(timed):
        both = [v for v in visits if a.key in v and b.key in v]
        if a.when != b.when or not both:
            continue
        gap = both[0][b.key].at - both[0][a.key].at
        want = b.offset - a.offset
        assert want - timedelta(hours=36) <= gap <= want + timedelta(hours=36), (a.key, b.key)


@pytest.mark.parametrize("line", list(RevenueLine))
def test_every_line_has_a_track_for_every_family(line: RevenueLine) -> None:
    for service in SERVICES.values():
        if service.line is line:
            track = resolve_track(line, service.key)
            assert track.family == service.family
            assert track.id == f"{line.value}.{service.family}"
