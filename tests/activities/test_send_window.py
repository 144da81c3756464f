from __future__ import annotations

from datetime import UTC, datetime

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
