"""When a text may reach a recipient: the federal 8am-9pm quiet-hours rule and stricter state
rules (DESIGN §6), evaluated in the *recipient's* time zone. Pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

FEDERAL = (time(8), time(21))
# State -> (weekday window, Sunday window). FL, OK, MD, WA: 8am-8pm; CT: 9am-8pm;
# TX: 9am-9pm Monday to Saturday and noon-9pm on Sunday.
STATE_WINDOWS: dict[str, tuple[tuple[time, time], tuple[time, time]]] = {
    "FL": ((time(8), time(20)), (time(8), time(20))),
    "OK": ((time(8), time(20)), (time(8), time(20))),
    "MD": ((time(8), time(20)), (time(8), time(20))),
    "WA": ((time(8), time(20)), (time(8), time(20))),
    "CT": ((time(9), time(20)), (time(9), time(20))),
    "TX": ((time(9), time(21)), (time(12), time(21))),
}


def window_for(state: str | None, local_day: datetime) -> tuple[time, time]:
    rule = STATE_WINDOWS.get((state or "").upper())
    if rule is None:
        return FEDERAL
    weekday, sunday = rule
    return sunday if local_day.weekday() == 6 else weekday


def next_allowed(at: datetime, timezone: str, state: str | None) -> datetime | None:
    """None if a text may go at `at`; otherwise the next moment (UTC) the window opens."""
    tz = ZoneInfo(timezone)
    local = at.astimezone(tz)
    start, end = window_for(state, local)
    if start <= local.time() < end:
        return None
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    # Local wall-clock opening, resolved through the zone so DST changes are respected.
    for _ in range(8):
        probe = datetime.combine(day, time(12), tzinfo=tz)
        opening = datetime.combine(day, window_for(state, probe)[0], tzinfo=tz)
        if opening > local:
            return opening.astimezone(UTC)
        day += timedelta(days=1)
    raise AssertionError("a send window opens within a week")  # pragma: no cover
