"""The eight-stage map, computed from stage transitions, leads and treatments (docs/funnel.md).

Pure: no database, no clock. `funnel.live` feeds it the live journeys' rows, `funnel.history`
an imported export replayed through the journey state machine; both give the same shapes, so
"historical" and "live" are measured by one definition."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from models.enums import JourneyStatus, Stage

STAGES: tuple[Stage, ...] = tuple(Stage)
# Forward order of the main path; reactivation and reviews_referrals sit beside it.
RANK = {
    Stage.INQUIRY: 0,
    Stage.SPEED_TO_LEAD: 1,
    Stage.CONSULT_BOOKED: 2,
    Stage.CONSULT_SHOW: 3,
    Stage.TREATMENT: 4,
    Stage.REBOOK: 5,
}
LEAKING_EXITS = (JourneyStatus.OPTED_OUT.value, JourneyStatus.CLOSED_LOST.value)
RECOVERY_CAUSES = ("reactivation", "no_show_recovery", "quote_follow_up", "recall")
FIVE_MINUTES = 300.0
# Speed-to-lead histogram buckets: (label, upper bound in seconds).
BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 min", 60),
    ("1-5 min", 300),
    ("5-15 min", 900),
    ("15-60 min", 3600),
    ("1-4 h", 4 * 3600),
    ("4-24 h", 24 * 3600),
    ("> 1 day", math.inf),
)


@dataclass(frozen=True)
class Transition:
    """One stage event. `journey` is an opaque key; `seq` orders events of equal `at`."""

    journey: str
    line: str
    from_stage: str | None
    to_stage: str
    status: str
    reason: str
    at: datetime
    seq: int = 0


@dataclass(frozen=True)
class Lead:
    line: str
    received_at: datetime
    answered_at: datetime | None  # the first outbound message handed to a provider
    referred: bool = False  # a new patient referred by an existing one (a referral obtained)


@dataclass(frozen=True)
class Treatment:
    line: str
    at: datetime
    amount: float
    recovered_by: str | None = None  # one of RECOVERY_CAUSES: automation brought it back


@dataclass(frozen=True)
class Ask:
    line: str
    kind: str  # review | referral | review_posted (obtained)
    at: datetime


@dataclass
class FunnelData:
    transitions: list[Transition] = field(default_factory=list)
    leads: list[Lead] = field(default_factory=list)
    treatments: list[Treatment] = field(default_factory=list)
    asks: list[Ask] = field(default_factory=list)
    # Live journeys hear `review_posted` events; an imported history has no such column, so
    # there "obtained" is unknown rather than zero.
    reviews_measured: bool = False


@dataclass
class StageRow:
    stage: str
    entered: int = 0
    advanced: int = 0
    leaked: int = 0
    open: int = 0  # still in the stage (or ended by erasure: neither advanced nor leaked)
    leak_rate: float | None = None  # leaked / (advanced + leaked)
    median_hours_in_stage: float | None = None


@dataclass
class Visit:
    journey: str
    line: str
    stage: str
    entered_at: datetime
    outcome: str | None = None  # advanced | leaked | void
    left_at: datetime | None = None
    reason: str | None = None


def _exit(t: Transition) -> bool:
    return t.from_stage == t.to_stage and t.status in {s.value for s in JourneyStatus} - {
        JourneyStatus.ACTIVE.value,
        JourneyStatus.PAUSED.value,
        JourneyStatus.PENDING.value,
    }


def _branch(t: Transition) -> bool:
    # The review ask is recorded as a side trip to reviews_referrals; the stage stays rebook.
    return t.to_stage == Stage.REVIEWS_REFERRALS.value and t.from_stage != t.to_stage


def classify(stage: str, t: Transition) -> tuple[str | None, bool]:
    """How transition `t` ends a visit of `stage`: (advanced | leaked | void | None, reopen).
    None leaves the visit open (a same-stage note such as a reschedule)."""
    if _exit(t):
        if t.status == JourneyStatus.ERASED.value:
            return "void", False
        return ("leaked" if t.status in LEAKING_EXITS else "advanced"), False
    if t.to_stage == stage:
        if stage == Stage.CONSULT_SHOW.value and t.reason == "no-show":
            return "leaked", False
        if stage == Stage.REBOOK.value:
            return "advanced", True  # treated again: the next cycle is a new rebook visit
        return None, False
    if t.to_stage == Stage.REACTIVATION.value:
        return "leaked", True
    if stage == Stage.REACTIVATION.value or stage == Stage.REBOOK.value:
        return "advanced", True  # came back: booked, showed or treated
    before = RANK.get(Stage(stage), 0)
    after = RANK.get(Stage(t.to_stage), 0)
    return ("advanced" if after > before else "leaked"), True


def visits(transitions: Iterable[Transition]) -> list[Visit]:
    """Every stage visit, in journey order, with how it ended."""
    by_journey: dict[str, list[Transition]] = defaultdict(list)
    for t in transitions:
        by_journey[t.journey].append(t)
    out: list[Visit] = []
    for journey, items in by_journey.items():
        items.sort(key=lambda t: (t.at, t.seq))
        current: Visit | None = None
        for t in items:
            if _branch(t):
                continue
            reopen = t.from_stage != t.to_stage and not _exit(t)
            if current is not None:
                outcome, again = classify(current.stage, t)
                if outcome is None:
                    continue
                current.outcome, current.left_at, current.reason = outcome, t.at, t.reason
                current = None
                reopen = again
            if reopen and not _exit(t):
                current = Visit(journey, t.line, t.to_stage, t.at)
                out.append(current)
    return out


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _in(at: datetime, start: datetime, end: datetime) -> bool:
    return start <= at < end


def stage_rows(
    all_visits: list[Visit], data: FunnelData, start: datetime, end: datetime
) -> list[StageRow]:
    rows = {s.value: StageRow(s.value) for s in STAGES}
    durations: dict[str, list[float]] = defaultdict(list)
    for v in all_visits:
        if not _in(v.entered_at, start, end):
            continue
        row = rows[v.stage]
        row.entered += 1
        if v.outcome == "advanced":
            row.advanced += 1
        elif v.outcome == "leaked":
            row.leaked += 1
        else:
            row.open += 1
        if v.outcome in ("advanced", "leaked") and v.left_at is not None:
            durations[v.stage].append((v.left_at - v.entered_at).total_seconds() / 3600)
    # Stage 8 is a side trip: entered by every journey treated in the period (each should be
    # asked), advanced when a review or referral ask went out, leaked when the ask never did.
    treated = {
        v.journey
        for v in all_visits
        if v.stage == Stage.REBOOK.value and _in(v.entered_at, start, end)
    }
    asked_at: dict[str, datetime] = {}
    for t in data.transitions:
        if _branch(t) and t.journey in treated:
            asked_at.setdefault(t.journey, t.at)
    first_treated: dict[str, datetime] = {}
    for v in all_visits:
        if v.stage == Stage.REBOOK.value and v.journey in treated:
            first_treated.setdefault(v.journey, v.entered_at)
            first_treated[v.journey] = min(first_treated[v.journey], v.entered_at)
    reviews = rows[Stage.REVIEWS_REFERRALS.value]
    reviews.entered = len(treated)
    reviews.advanced = len(asked_at)
    reviews.leaked = reviews.entered - reviews.advanced
    for journey, at in asked_at.items():
        durations[reviews.stage].append((at - first_treated[journey]).total_seconds() / 3600)
    for row in rows.values():
        row.leak_rate = _rate(row.leaked, row.advanced + row.leaked)
        found = durations.get(row.stage)
        row.median_hours_in_stage = round(statistics.median(found), 2) if found else None
    return [rows[s.value] for s in STAGES]


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def speed_to_lead(leads: list[Lead]) -> dict[str, object]:
    waits = sorted(
        max(0.0, (lead.answered_at - lead.received_at).total_seconds())
        for lead in leads
        if lead.answered_at is not None
    )
    counts = [0] * len(BUCKETS)
    for w in waits:
        counts[next(i for i, (_, top) in enumerate(BUCKETS) if w < top)] += 1
    within = sum(1 for w in waits if w <= FIVE_MINUTES)
    return {
        "leads": len(leads),
        "answered": len(waits),
        "unanswered": len(leads) - len(waits),
        "p50_seconds": percentile(waits, 50),
        "p90_seconds": percentile(waits, 90),
        "p99_seconds": percentile(waits, 99),
        "within_5_min_share": _rate(within, len(leads)),
        "histogram": [
            {"bucket": label, "count": n} for (label, _), n in zip(BUCKETS, counts, strict=True)
        ],
    }


def report(data: FunnelData, start: datetime, end: datetime, line: str | None) -> dict[str, object]:
    """The whole map for [start, end), optionally one revenue line (see docs/funnel.md)."""
    if line is not None:
        data = FunnelData(
            [t for t in data.transitions if t.line == line],
            [x for x in data.leads if x.line == line],
            [x for x in data.treatments if x.line == line],
            [x for x in data.asks if x.line == line],
            data.reviews_measured,
        )
    all_visits = visits(data.transitions)
    rows = stage_rows(all_visits, data, start, end)
    by_stage = {r.stage: r for r in rows}
    leads = [x for x in data.leads if _in(x.received_at, start, end)]
    in_period = [v for v in all_visits if _in(v.entered_at, start, end)]
    bookings = sum(1 for v in in_period if v.stage == Stage.CONSULT_BOOKED.value)
    no_shows = sum(
        1
        for v in in_period
        if v.stage == Stage.CONSULT_SHOW.value and v.outcome == "leaked" and v.reason == "no-show"
    )
    cancels = sum(
        1
        for v in in_period
        if v.stage in (Stage.CONSULT_BOOKED.value, Stage.CONSULT_SHOW.value)
        and v.outcome == "leaked"
        and v.reason == "appointment cancelled"
    )
    rebook = by_stage[Stage.REBOOK.value]
    reactivation = by_stage[Stage.REACTIVATION.value]
    treatments = [x for x in data.treatments if _in(x.at, start, end)]
    revenue: dict[str, float] = defaultdict(float)
    recovered: dict[str, float] = {cause: 0.0 for cause in RECOVERY_CAUSES}
    recovered_count = 0
    for x in treatments:
        revenue[x.line] += x.amount
        if x.recovered_by is not None:
            recovered[x.recovered_by] += x.amount
            recovered_count += 1
    asks = [a for a in data.asks if _in(a.at, start, end)]
    return {
        "stages": [vars(r) for r in rows],
        "speed_to_lead": speed_to_lead(leads),
        "bookings": bookings,
        "no_shows": no_shows,
        "cancellations": cancels,
        "no_show_rate": _rate(no_shows, bookings),
        "no_show_or_cancel_rate": _rate(no_shows + cancels, bookings),
        "rebook_rate": _rate(rebook.advanced, rebook.advanced + rebook.leaked),
        "reactivations": {"entered": reactivation.entered, "recovered": reactivation.advanced},
        "reviews": {
            "asked": sum(1 for a in asks if a.kind == "review"),
            "obtained": (
                sum(1 for a in asks if a.kind == "review_posted") if data.reviews_measured else None
            ),
        },
        "referrals": {
            "asked": sum(1 for a in asks if a.kind == "referral"),
            "obtained": sum(1 for x in leads if x.referred),
        },
        "revenue": {
            "treatments": len(treatments),
            "total": round(sum(revenue.values()), 2),
            "by_line": {k: round(v, 2) for k, v in sorted(revenue.items())},
            "recovered_by_automation": {
                "treatments": recovered_count,
                "total": round(sum(recovered.values()), 2),
                "by_cause": {k: round(v, 2) for k, v in recovered.items()},
            },
        },
    }
