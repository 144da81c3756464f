"""A synthetic practice whose eight-stage map is known exactly: eleven injectables leads,
their consults and treatments, as the three CSV exports of docs/funnel.md. Each patient's path
(and so the hand count in the tests) is written beside its rows.

Day 0 is Monday 2025-01-06, 10:00 in New York (15:00 UTC). Times without a zone in a file are
the practice's local time (America/New_York)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

D0 = datetime(2025, 1, 6, 15, 0, tzinfo=UTC)
ZONE_OFFSET = timedelta(hours=-5)  # New York in winter: local = UTC - 5 h


def iso(day: float, seconds: float = 0) -> str:
    return (D0 + timedelta(days=day, seconds=seconds)).isoformat()


def us(day: float) -> str:
    """The US exports' MM/DD/YYYY HH:MM, local time."""
    return (D0 + timedelta(days=day) + ZONE_OFFSET).strftime("%m/%d/%Y %H:%M")


# Paths (replayed through the state machine with the injectables track, no automation):
#  P1  booked d1 for d5, came, treated d5 ($400) and again d95 ($450): rebook advanced once,
#      the second rebook still open at the end of the data (d210).
#  P2  booked, came, treated d5 ($500), never back: recall lapsed d155 -> reactivation, lost d200.
#  P3  booked, no-show d5: consult_show leaked; not rebooked d12 -> reactivation, lost d57.
#  P4  booked, cancelled d5: consult_booked leaked; back in speed_to_lead (cancel recovery),
#      which goes cold -> reactivation -> lost.
#  P5  booked, came, never treated: quote went quiet -> reactivation -> lost.
#  P6  booked, no-show d5, booked again d8 for d10, came, treated d10 ($300); recall lapsed
#      d160 -> reactivation, lost d205.
#  P7..P10  never booked: lead went cold d14 -> reactivation -> lost d59. P10 came referred.
#  P11 a lead on d210 (the end of the data), not answered: still in speed_to_lead.
# First answers: P1 30 s, P2 2 min, P3 4 min, P4 10 min, P5 30 min, P6 2 h, P7 5 h, P8 2 days;
# P9, P10, P11 never.
RESPONSE_SECONDS = {1: 30, 2: 120, 3: 240, 4: 600, 5: 1800, 6: 7200, 7: 18000, 8: 172800}

LEADS_HEADER = (
    "patient_id,received_at,interest,channel,first_name,phone,email,sms_consent,"
    "first_response_at,referred_by"
)


def leads_csv() -> str:
    rows = [LEADS_HEADER]
    for n in range(1, 12):
        day = 210 if n == 11 else 0
        answered = iso(day, RESPONSE_SECONDS[n]) if n in RESPONSE_SECONDS else ""
        referred = "P1" if n == 10 else ""
        rows.append(
            f"P{n},{iso(day)},botox,form,Pat{n},+1212555{n:04d},p{n}@example.com,yes,"
            f"{answered},{referred}"
        )
    return "\n".join(rows) + "\n"


def appointments_csv() -> str:
    rows = ["patient_id,appointment_id,booked_at,scheduled_at,status,interest"]
    for n, status in (
        (1, "Completed"),
        (2, "completed"),
        (3, "No Show"),
        (4, "Cancelled"),
        (5, "checked out"),
        (6, "no-show"),
    ):
        rows.append(f"P{n},A{n},{us(1)},{us(5)},{status},botox")
    rows.append(f"P6,A6b,{us(8)},{us(10)},completed,botox")
    return "\n".join(rows) + "\n"


def treatments_csv() -> str:
    rows = ["patient_id,treatment_id,performed_at,interest,amount"]
    for tid, n, day, amount in (
        ("T1", 1, 5 + 1 / 24, "$400.00"),
        ("T2", 1, 95, "450"),
        ("T3", 2, 5 + 1 / 24, "500"),
        ("T4", 6, 10 + 1 / 24, "300.00"),
    ):
        rows.append(f"P{n},{tid},{iso(day)},Botox Cosmetic,{amount}")
    return "\n".join(rows) + "\n"
