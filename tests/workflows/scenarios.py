"""Multi-year scenarios, one per line (issue 3): the same `Scenario` drives the preview and,
through `drive`, the real workflow under the time-skipping server."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from temporalio.client import WorkflowHandle

from models.enums import EventType, RevenueLine
from tests.seed import Seeded
from tests.workflows.conftest import Harness
from workflows.library import resolve_track
from workflows.preview import Preview, Scenario, ScenarioEvent, preview

BOOKED, ARRIVED, TREATED = (
    EventType.CONSULT_BOOKED,
    EventType.ARRIVED,
    EventType.TREATMENT_COMPLETED,
)


def start_at(tz: str) -> datetime:
    """Monday 4 January 2027, 09:00 local: the inquiry of every scenario."""
    return datetime(2027, 1, 4, 9, 0, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def consult(book_day: int, day: int) -> list[ScenarioEvent]:
    """Booked on `book_day` for `day` at 14:00; arrives 13:55."""
    return [
        ScenarioEvent(book_day, BOOKED, appointment_day=day),
        ScenarioEvent(day, ARRIVED, at_time=time(13, 55)),
    ]


def treated(day: int, service: str, at: time = time(15, 0)) -> ScenarioEvent:
    return ScenarioEvent(day, TREATED, at_time=at, service=service, amount=500.0)


def tox_two_years() -> tuple[RevenueLine, Scenario]:
    tz = "America/Los_Angeles"
    days = [3 + 95 * n for n in range(8)]  # a patient who comes back on day 95 of each cycle
    return RevenueLine.INJECTABLES, Scenario(
        start=start_at(tz),
        timezone=tz,
        state="CA",
        interest="botox",
        events=[*consult(1, 3), *(treated(d, "botox") for d in days)],
        horizon_days=800,
    )


def laser_series_of_eight() -> tuple[RevenueLine, Scenario]:
    tz = "America/New_York"
    # Sessions every 49 days, but session 4 slips: the patient books only after the missed-
    # session nudge (day 63 of that gap) and comes on day 66.
    days = [7]
    for gap in (49, 49, 66, 49, 49, 49, 49):
        days.append(days[-1] + gap)
    return RevenueLine.LASER_ENERGY, Scenario(
        start=start_at(tz),
        timezone=tz,
        state="NY",
        interest="laser_hair_body",
        events=[*consult(2, 7), *(treated(d, "laser_hair_body") for d in days)],
        horizon_days=days[-1] + 500,
    )


def surgical_through_twelve_months() -> tuple[RevenueLine, Scenario]:
    tz = "America/Chicago"
    return RevenueLine.SURGICAL, Scenario(
        start=start_at(tz),
        timezone=tz,
        state="TX",
        interest="breast_augmentation",
        events=[*consult(5, 12), treated(45, "breast_augmentation", time(8, 0))],
        horizon_days=500,
    )


def body_contouring_package() -> tuple[RevenueLine, Scenario]:
    tz = "America/Denver"
    return RevenueLine.BODY_CONTOURING, Scenario(
        start=start_at(tz),
        timezone=tz,
        state="CO",
        interest="coolsculpting",
        events=[
            *consult(2, 4),
            treated(4, "coolsculpting"),
            treated(60, "coolsculpting"),  # the package's second session
            treated(250, "coolsculpting"),  # maintenance: a new package starts
        ],
        horizon_days=600,
    )


def skin_check_recall() -> tuple[RevenueLine, Scenario]:
    tz = "America/New_York"
    return RevenueLine.DERMATOLOGY, Scenario(
        start=start_at(tz),
        timezone=tz,
        state="FL",
        interest="skin_check",
        events=[*consult(3, 10), treated(10, "skin_check"), treated(380, "skin_check")],
        horizon_days=1200,
    )


SCENARIOS = {
    "tox_two_years": tox_two_years,
    "laser_series_of_eight": laser_series_of_eight,
    "surgical_through_twelve_months": surgical_through_twelve_months,
    "body_contouring_package": body_contouring_package,
    "skin_check_recall": skin_check_recall,
}


def preview_of(line: RevenueLine, scenario: Scenario) -> Preview:
    return preview(scenario, lambda s: resolve_track(line, s or scenario.interest))


async def drive(h: Harness, seeded: Seeded, scenario: Scenario) -> WorkflowHandle:
    """The scenario through the real workflow: the inquiry at its start, each event signalled
    at its moment (time skipped between), then the clock run to the horizon."""
    await h.advance_to(scenario.start)
    handle = await h.start(seeded, service=scenario.interest)
    for n, ev in enumerate(scenario.events):
        at = scenario.local_at(ev.day, ev.at_time)
        appointment = (
            scenario.local_at(ev.appointment_day, ev.appointment_time)
            if ev.appointment_day is not None
            else None
        )
        await h.advance_to(at)
        await h.signal(
            handle,
            ev.type,
            f"scenario-{n}",
            at=at,
            appointment_at=appointment,
            service=ev.service,
            amount=ev.amount,
        )
    await h.advance_to(scenario.start + timedelta(days=scenario.horizon_days))
    return handle
