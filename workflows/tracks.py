"""Version 1 of the built-in tracks, frozen: one per revenue line, as journeys ran them before
the track library (workflows/library.py). Kept so that journeys whose history began on version 1
replay and finish their cycle exactly as they started it; never edit the data below.

Pure data, imported by the workflow: nothing here may do I/O or read the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from models.enums import JourneyStatus, MessageKind, RevenueLine, Stage
from models.track_types import OutcomeSpec, SequenceSpec, StepSpec, TrackSpec

D = timedelta(days=1)
H = timedelta(hours=1)
M = timedelta(minutes=1)


@dataclass(frozen=True)
class Step:
    """One timed action in a sequence, `offset` from the sequence's anchor.

    `template` sends a message through the gate; `task` raises a staff task instead. `grace` is
    how late a step may still run: past it the step is skipped, never fired late. `branch` marks
    a step that enters a side stage (the review/referral ask) without leaving the main one.
    `when` restricts a post-treatment step to series state: "series_open" or "series_done"."""

    key: str
    offset: timedelta
    template: str | None = None
    kind: MessageKind = MessageKind.MARKETING
    task: str | None = None
    grace: timedelta = 12 * H
    branch: Stage | None = None
    when: str | None = None
    immediate_reply: bool = False


@dataclass(frozen=True)
class Outcome:
    """What happens when a sequence runs out: `after` the anchor, go to `stage` (or exit with
    `exit_status` when set), recording `reason`."""

    after: timedelta
    reason: str
    stage: Stage | None = None
    exit_status: str | None = None
    when: str | None = None


@dataclass(frozen=True)
class Track:
    line: RevenueLine
    version: int
    new_lead: tuple[Step, ...]
    new_lead_outcome: Outcome
    consult_reminders: tuple[Step, ...]  # negative offsets from the appointment
    awaiting_outcome: tuple[Step, ...]  # anchor: appointment time
    awaiting_outcome_outcome: Outcome
    no_show_recovery: tuple[Step, ...]
    no_show_outcome: Outcome
    cancel_recovery: tuple[Step, ...]
    cancel_outcome: Outcome
    quote_follow_up: tuple[Step, ...]
    quote_outcome: Outcome
    post_treatment: tuple[Step, ...]  # anchor: the treatment
    post_treatment_outcomes: tuple[Outcome, ...]  # first whose `when` matches
    reactivation: tuple[Step, ...]
    reactivation_outcome: Outcome
    series_sessions: int = 0  # 0: not a series


IMMEDIATE_REPLY = Step(
    "reply", timedelta(0), "inquiry_reply", MessageKind.REPLY, grace=30 * D, immediate_reply=True
)


def _nurture(days: tuple[int, ...]) -> tuple[Step, ...]:
    nurture = (
        Step(f"nurture_d{d}", d * D, f"nurture_{i}", MessageKind.MARKETING)
        for i, d in enumerate(days, start=1)
    )
    return (IMMEDIATE_REPLY, *nurture)


def _reminders(offsets: tuple[tuple[str, timedelta], ...]) -> tuple[Step, ...]:
    # A reminder is care (transactional); it is pointless once its moment has gone by an hour.
    return tuple(
        Step(f"reminder_{name}", -off, f"consult_reminder_{name}", MessageKind.CARE, grace=H)
        for name, off in offsets
    )


_AWAITING = (Step("outcome_unknown", 2 * D, task="consult_outcome_unknown", grace=30 * D),)
_AWAITING_OUTCOME = Outcome(14 * D, "consult outcome never reported", stage=Stage.REACTIVATION)
_NO_SHOW = (
    Step("no_show_1", 15 * M, "no_show_rebook_1", MessageKind.CARE),
    Step("no_show_2", 1 * D, "no_show_rebook_2"),
    Step("no_show_3", 3 * D, "no_show_rebook_3"),
)
_NO_SHOW_OUTCOME = Outcome(7 * D, "no-show not rebooked", stage=Stage.REACTIVATION)
_CANCEL = (
    Step("cancel_1", 15 * M, "cancel_rebook_1", MessageKind.CARE),
    Step("cancel_2", 2 * D, "cancel_rebook_2"),
)
_CANCEL_OUTCOME = Outcome(7 * D, "cancelled and not rebooked", stage=Stage.REACTIVATION)
_REACTIVATION = (
    Step("reactivate_1", 1 * H, "reactivation_1"),
    Step("reactivate_2", 14 * D, "reactivation_2"),
    Step("reactivate_3", 30 * D, "reactivation_3"),
)
_REACTIVATION_OUTCOME = Outcome(45 * D, "no response to reactivation", exit_status="closed_lost")
_NON_SURGICAL_REMINDERS = _reminders((("1d", 1 * D), ("2h", 2 * H)))


def _review(day: int, when: str | None = None) -> tuple[Step, ...]:
    return (
        Step("review_ask", day * D, "review_ask", branch=Stage.REVIEWS_REFERRALS, when=when),
        Step("referral_ask", (day + 7) * D, "referral_ask", when=when),
    )


SURGICAL = Track(
    line=RevenueLine.SURGICAL,
    version=1,
    new_lead=_nurture((1, 3, 7, 14, 30)),
    new_lead_outcome=Outcome(45 * D, "lead went cold", stage=Stage.REACTIVATION),
    consult_reminders=_reminders((("7d", 7 * D), ("2d", 2 * D), ("1d", 1 * D), ("2h", 2 * H))),
    awaiting_outcome=_AWAITING,
    awaiting_outcome_outcome=_AWAITING_OUTCOME,
    no_show_recovery=_NO_SHOW,
    no_show_outcome=_NO_SHOW_OUTCOME,
    cancel_recovery=_CANCEL,
    cancel_outcome=_CANCEL_OUTCOME,
    reactivation=_REACTIVATION,
    reactivation_outcome=_REACTIVATION_OUTCOME,
    quote_follow_up=tuple(
        Step(f"quote_d{d}", d * D, f"quote_follow_up_{i}")
        for i, d in enumerate((1, 3, 7, 14, 30), 1)
    ),
    quote_outcome=Outcome(45 * D, "quote went quiet", stage=Stage.REACTIVATION),
    post_treatment=(
        *(
            Step(f"post_op_{name}", off, f"post_op_{name}", MessageKind.CARE)
            for name, off in (
                ("d1", 1 * D),
                ("w1", 7 * D),
                ("w2", 14 * D),
                ("w6", 42 * D),
                ("m3", 90 * D),
                ("m6", 180 * D),
                ("m12", 365 * D),
            )
        ),
        *_review(56),
        Step("cross_sell", 380 * D, "cross_sell_maintenance"),
    ),
    post_treatment_outcomes=(
        Outcome(400 * D, "post-op cadence complete", exit_status="closed_won"),
    ),
)

INJECTABLES = Track(
    line=RevenueLine.INJECTABLES,
    version=1,
    new_lead=_nurture((1, 3, 7)),
    new_lead_outcome=Outcome(14 * D, "lead went cold", stage=Stage.REACTIVATION),
    consult_reminders=_NON_SURGICAL_REMINDERS,
    awaiting_outcome=_AWAITING,
    awaiting_outcome_outcome=_AWAITING_OUTCOME,
    no_show_recovery=_NO_SHOW,
    no_show_outcome=_NO_SHOW_OUTCOME,
    cancel_recovery=_CANCEL,
    cancel_outcome=_CANCEL_OUTCOME,
    reactivation=_REACTIVATION,
    reactivation_outcome=_REACTIVATION_OUTCOME,
    quote_follow_up=tuple(
        Step(f"quote_d{d}", d * D, f"quote_follow_up_{i}") for i, d in enumerate((1, 3, 7), 1)
    ),
    quote_outcome=Outcome(14 * D, "quote went quiet", stage=Stage.REACTIVATION),
    # Tox: never sooner than ~90 days, so the recall is due at day 90, with two follow-ups.
    post_treatment=(
        *_review(14),
        Step("recall_due", 90 * D, "recall_due"),
        Step("recall_2", 100 * D, "recall_follow_up"),
        Step("recall_3", 120 * D, "recall_last"),
    ),
    post_treatment_outcomes=(Outcome(150 * D, "recall lapsed", stage=Stage.REACTIVATION),),
)

LASER_ENERGY = Track(
    line=RevenueLine.LASER_ENERGY,
    version=1,
    new_lead=_nurture((1, 3, 7)),
    new_lead_outcome=Outcome(14 * D, "lead went cold", stage=Stage.REACTIVATION),
    consult_reminders=_NON_SURGICAL_REMINDERS,
    awaiting_outcome=_AWAITING,
    awaiting_outcome_outcome=_AWAITING_OUTCOME,
    no_show_recovery=_NO_SHOW,
    no_show_outcome=_NO_SHOW_OUTCOME,
    cancel_recovery=_CANCEL,
    cancel_outcome=_CANCEL_OUTCOME,
    reactivation=_REACTIVATION,
    reactivation_outcome=_REACTIVATION_OUTCOME,
    quote_follow_up=tuple(
        Step(f"quote_d{d}", d * D, f"quote_follow_up_{i}") for i, d in enumerate((1, 3, 7), 1)
    ),
    quote_outcome=Outcome(14 * D, "quote went quiet", stage=Stage.REACTIVATION),
    post_treatment=(
        *_review(14),
        Step("next_session", 42 * D, "series_next_session", MessageKind.CARE, when="series_open"),
        Step("missed_session", 56 * D, "series_missed_session", when="series_open"),
        Step("maintenance", 180 * D, "maintenance_offer", when="series_done"),
    ),
    post_treatment_outcomes=(
        Outcome(84 * D, "series left unfinished", stage=Stage.REACTIVATION, when="series_open"),
        Outcome(240 * D, "series complete", exit_status="closed_won", when="series_done"),
    ),
    series_sessions=6,
)

BODY_CONTOURING = Track(
    line=RevenueLine.BODY_CONTOURING,
    version=1,
    new_lead=_nurture((1, 3, 7)),
    new_lead_outcome=Outcome(14 * D, "lead went cold", stage=Stage.REACTIVATION),
    consult_reminders=_NON_SURGICAL_REMINDERS,
    awaiting_outcome=_AWAITING,
    awaiting_outcome_outcome=_AWAITING_OUTCOME,
    no_show_recovery=_NO_SHOW,
    no_show_outcome=_NO_SHOW_OUTCOME,
    cancel_recovery=_CANCEL,
    cancel_outcome=_CANCEL_OUTCOME,
    reactivation=_REACTIVATION,
    reactivation_outcome=_REACTIVATION_OUTCOME,
    quote_follow_up=tuple(
        Step(f"quote_d{d}", d * D, f"quote_follow_up_{i}") for i, d in enumerate((1, 3, 7, 14), 1)
    ),
    quote_outcome=Outcome(21 * D, "quote went quiet", stage=Stage.REACTIVATION),
    post_treatment=(
        Step("next_session", 28 * D, "package_next_session", MessageKind.CARE, when="series_open"),
        Step("missed_session", 42 * D, "series_missed_session", when="series_open"),
        Step("results_check", 84 * D, "results_check", MessageKind.CARE, when="series_done"),
        *_review(90, when="series_done"),
        Step("next_package", 180 * D, "next_package_offer", when="series_done"),
    ),
    post_treatment_outcomes=(
        Outcome(70 * D, "package left unfinished", stage=Stage.REACTIVATION, when="series_open"),
        Outcome(240 * D, "package complete", exit_status="closed_won", when="series_done"),
    ),
    series_sessions=4,
)

TRACKS: dict[RevenueLine, Track] = {
    t.line: t for t in (SURGICAL, INJECTABLES, LASER_ENERGY, BODY_CONTOURING)
}


def track_for(line: RevenueLine) -> Track:
    return TRACKS[RevenueLine(line)]


# ---- version 1 as track data -----------------------------------------------------------------


def _spec_step(step: Step) -> StepSpec:
    return StepSpec(
        key=step.key,
        offset_minutes=int(step.offset.total_seconds() // 60),
        template=step.template,
        kind=step.kind,
        task=step.task,
        grace_minutes=int(step.grace.total_seconds() // 60),
        branch=step.branch,
        when=step.when,
        immediate_reply=step.immediate_reply,
    )


_V1_SEQUENCE_FOR_STAGE = {
    Stage.REACTIVATION: "reactivation",
    Stage.CONSULT_SHOW: "awaiting_outcome",
}


def _spec_outcome(outcome: Outcome) -> OutcomeSpec:
    return OutcomeSpec(
        after_minutes=int(outcome.after.total_seconds() // 60),
        reason=outcome.reason,
        stage=outcome.stage,
        sequence=_V1_SEQUENCE_FOR_STAGE[outcome.stage] if outcome.stage else None,
        exit_status=JourneyStatus(outcome.exit_status) if outcome.exit_status else None,
        when=outcome.when,
    )


def legacy_track_spec(line: RevenueLine) -> TrackSpec:
    """Version 1, frozen: the tracks journeys ran before the library (issue 3). Journeys whose
    history began on version 1 keep running it until their cycle ends (`workflow.patched`)."""
    t = TRACKS[RevenueLine(line)]
    appointment_due = Outcome(timedelta(0), "consult time arrived", stage=Stage.CONSULT_SHOW)
    slots: dict[str, tuple[tuple[Step, ...], tuple[Outcome, ...]]] = {
        "new_lead": (t.new_lead, (t.new_lead_outcome,)),
        "cancel_recovery": (t.cancel_recovery, (t.cancel_outcome,)),
        "consult_reminders": (t.consult_reminders, (appointment_due,)),
        "awaiting_outcome": (t.awaiting_outcome, (t.awaiting_outcome_outcome,)),
        "no_show_recovery": (t.no_show_recovery, (t.no_show_outcome,)),
        "quote_follow_up": (t.quote_follow_up, (t.quote_outcome,)),
        "post_treatment": (t.post_treatment, t.post_treatment_outcomes),
        "reactivation": (t.reactivation, (t.reactivation_outcome,)),
    }
    return TrackSpec(
        id=f"{t.line.value}.v1",
        line=t.line,
        family="v1",
        service="",
        version="1",
        series_sessions=t.series_sessions,
        sequences={
            purpose: SequenceSpec(
                id=f"{t.line.value}.v1.{purpose}",
                purpose=purpose,
                stage=Stage.SPEED_TO_LEAD,  # not used by the machine; v1 is not listed
                description="version 1",
                steps=[_spec_step(s) for s in steps],
                outcomes=[_spec_outcome(o) for o in outcomes],
            )
            for purpose, (steps, outcomes) in slots.items()
        },
    )
