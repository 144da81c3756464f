from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from activities.send_window import next_allowed


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "tz", "state", "expected"),
    [
        # Federal 8am-9pm: Los Angeles 10:00 is fine; 21:30 waits for 08:00 next day.
        (utc(2026, 12, 2, 18), "America/Los_Angeles", "CA", None),
        (utc(2026, 12, 3, 5, 30), "America/Los_Angeles", "CA", utc(2026, 12, 3, 16)),
        # Florida closes at 8pm: 20:30 Eastern waits for 08:00.
        (utc(2026, 12, 3, 1, 30), "America/New_York", "FL", utc(2026, 12, 3, 13)),
        (utc(2026, 12, 3, 1, 30), "America/New_York", "NY", None),  # 20:30 federal is fine
        # Texas: Saturday 08:30 waits for 09:00; Sunday 10:00 waits for noon.
        (utc(2026, 12, 5, 14, 30), "America/Chicago", "TX", utc(2026, 12, 5, 15)),
        (utc(2026, 12, 6, 16), "America/Chicago", "TX", utc(2026, 12, 6, 18)),
        # Texas Saturday 22:00 waits for Sunday noon, not Sunday 9am.
        (utc(2026, 12, 6, 4), "America/Chicago", "TX", utc(2026, 12, 6, 18)),
        # Connecticut opens at 9.
        (utc(2026, 12, 2, 13, 30), "America/New_York", "CT", utc(2026, 12, 2, 14)),
        # The recipient's zone rules, not the server's: 07:00 in Honolulu.
        (utc(2026, 12, 2, 17), "Pacific/Honolulu", None, utc(2026, 12, 2, 18)),
        # DST starts 2027-03-14 in the US: 8am local is 15:00 UTC that day in LA.
        (utc(2027, 3, 14, 12), "America/Los_Angeles", "CA", utc(2027, 3, 14, 15)),
    ],
)
def test_next_allowed(at: datetime, tz: str, state: str | None, expected: datetime | None) -> None:
    assert next_allowed(at, tz, state) == expected


# ---- the whole table: every stricter state, both edges, on a weekday and a Sunday -------------

# state -> (zone, weekday window, Sunday window) in local hours
TABLE = {
    "FL": ("America/New_York", (8, 20), (8, 20)),
    "OK": ("America/Chicago", (8, 20), (8, 20)),
    "MD": ("America/New_York", (8, 20), (8, 20)),
    "WA": ("America/Los_Angeles", (8, 20), (8, 20)),
    "CT": ("America/New_York", (9, 20), (9, 20)),
    "TX": ("America/Chicago", (9, 21), (12, 21)),
    "NY": ("America/New_York", (8, 21), (8, 21)),  # federal only
    "CA": ("America/Los_Angeles", (8, 21), (8, 21)),  # federal only
}
WEDNESDAY = (2026, 12, 2)
SUNDAY = (2026, 12, 6)


def local(day: tuple[int, int, int], hour: int, minute: int, zone: str) -> datetime:
    return datetime(*day, hour, minute, tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize("state", sorted(TABLE))
@pytest.mark.parametrize("day", [WEDNESDAY, SUNDAY], ids=["weekday", "sunday"])
def test_state_window_edges(state: str, day: tuple[int, int, int]) -> None:
    zone, weekday, sunday = TABLE[state]
    opens, closes = sunday if day == SUNDAY else weekday
    # The minute before opening waits for the opening, to the minute.
    before = local(day, opens - 1, 59, zone)
    assert next_allowed(before, zone, state) == local(day, opens, 0, zone).astimezone(UTC)
    assert next_allowed(local(day, opens, 0, zone), zone, state) is None
    assert next_allowed(local(day, closes - 1, 59, zone), zone, state) is None
    # At closing time it waits for the next day's opening (Saturday evening -> Sunday's rule).
    after = next_allowed(local(day, closes, 0, zone), zone, state)
    assert after is not None and after.astimezone(UTC) > local(day, closes, 0, zone)


def test_texas_saturday_night_waits_for_sunday_noon_and_sunday_night_for_monday_nine() -> None:
    zone = "America/Chicago"
    saturday_night = local((2026, 12, 5), 21, 30, zone)
    assert next_allowed(saturday_night, zone, "TX") == local(SUNDAY, 12, 0, zone).astimezone(UTC)
    sunday_night = local(SUNDAY, 21, 0, zone)
    monday = local((2026, 12, 7), 9, 0, zone).astimezone(UTC)
    assert next_allowed(sunday_night, zone, "TX") == monday


def test_dst_ends_the_window_opens_at_local_8_not_utc() -> None:
    # US DST ends 2026-11-01 at 02:00: 08:00 New York is 12:00 UTC the day before, 13:00 on it.
    zone = "America/New_York"
    assert next_allowed(utc(2026, 10, 31, 11), zone, "FL") == utc(2026, 10, 31, 12)
    assert next_allowed(utc(2026, 11, 1, 11), zone, "FL") == utc(2026, 11, 1, 13)
    # Sunday 2027-03-14 is both DST start and a Texas Sunday: noon CDT is 17:00 UTC.
    assert next_allowed(utc(2027, 3, 14, 14), "America/Chicago", "TX") == utc(2027, 3, 14, 17)
