"""The preview's scenario in a query string: a comma-separated list of events, each

    <type>@<day>[T<HH:MM>][><appointment day>[T<HH:MM>]][:<service>]

e.g. `booked@3>10,no_show@10T14:20,booked@12>15T09:00,arrived@15T08:55,treated@15T10:00:botox`:
booked on day 3 for day 10, a no-show, rebooked for day 15, arrived and treated with Botox.
Days count from the inquiry (day 0) on the practice's calendar; times are local (default 10:30;
appointments default to 14:00). Short to type in a browser or curl, and strict: every mistake is
a 422 naming the event it is in."""

from __future__ import annotations

import re
from datetime import time

from models.enums import EventType
from workflows.catalog import find_service
from workflows.preview import DEFAULT_EVENT_TIME, ScenarioEvent

TYPES: dict[str, EventType] = {
    "booked": EventType.CONSULT_BOOKED,
    "rescheduled": EventType.APPOINTMENT_RESCHEDULED,
    "cancelled": EventType.APPOINTMENT_CANCELLED,
    "arrived": EventType.ARRIVED,
    "no_show": EventType.NO_SHOW,
    "treated": EventType.TREATMENT_COMPLETED,
    "replied": EventType.PATIENT_REPLIED,
    "paused": EventType.STAFF_PAUSED,
    "resumed": EventType.STAFF_RESUMED,
}
NEEDS_APPOINTMENT = {EventType.CONSULT_BOOKED, EventType.APPOINTMENT_RESCHEDULED}
MAX_DAY = 3650
MAX_EVENTS = 100

_EVENT = re.compile(
    r"^(?P<type>[a-z_]+)@(?P<day>\d{1,4})(?:t(?P<time>\d{1,2}:\d{2}))?"
    r"(?:>(?P<appt_day>\d{1,4})(?:t(?P<appt_time>\d{1,2}:\d{2}))?)?"
    r"(?::(?P<service>[a-z0-9_]+))?$"
)


class ScenarioError(ValueError):
    pass


def _time(text: str | None, default: time, n: int) -> time:
    if text is None:
        return default
    hours, minutes = (int(x) for x in text.split(":"))
    if hours > 23 or minutes > 59:
        raise ScenarioError(f"event {n}: {text} is not a time of day")
    return time(hours, minutes)


def parse_events(text: str) -> list[ScenarioEvent]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_EVENTS:
        raise ScenarioError(f"at most {MAX_EVENTS} events")
    events = []
    for n, part in enumerate(parts, start=1):
        found = _EVENT.match(part.lower())
        if found is None:
            raise ScenarioError(
                f"event {n}: expected <type>@<day>[T<HH:MM>][><day>[T<HH:MM>]][:<service>]"
            )
        kind = TYPES.get(found["type"])
        if kind is None:
            raise ScenarioError(f"event {n}: unknown type; use one of {', '.join(TYPES)}")
        day = int(found["day"])
        appt_day = int(found["appt_day"]) if found["appt_day"] else None
        if day > MAX_DAY or (appt_day or 0) > MAX_DAY:
            raise ScenarioError(f"event {n}: days run from 0 to {MAX_DAY}")
        if (kind in NEEDS_APPOINTMENT) != (appt_day is not None):
            need = "needs" if kind in NEEDS_APPOINTMENT else "takes no"
            raise ScenarioError(f"event {n}: {found['type']} {need} an appointment (>day)")
        service = found["service"]
        if service is not None:
            if kind is not EventType.TREATMENT_COMPLETED:
                raise ScenarioError(f"event {n}: only a treatment names a service")
            known = find_service(service)
            if known is None:
                raise ScenarioError(f"event {n}: unknown service")
            service = known.key
        events.append(
            ScenarioEvent(
                day=day,
                type=kind,
                at_time=_time(found["time"], DEFAULT_EVENT_TIME, n),
                appointment_day=appt_day,
                appointment_time=_time(found["appt_time"], time(14, 0), n),
                service=service,
            )
        )
    return events
