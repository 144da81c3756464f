"""The track library: for every revenue line and service family, the sequence for every stage of
the map (DESIGN §1-2), built from the catalog's rhythm and a practice's overrides.

Pure and deterministic: the workflow's resolve activity, the API's library listing and the
preview all call `resolve_track`, so what staff preview is what the journey runs. A journey
freezes the resolved track when its cycle starts; edits apply from its next cycle.

Sequence ids: `{family}.{purpose}` for sequences written for one service family (nurture, pre-
consult, quote follow-up, post-treatment, review and referral, lapsed reactivation) and
`{line}.{purpose}` for those a line shares (no-show and cancellation recovery, the consult outcome
check, quiet-quote and cold-lead reactivation)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from models.enums import JourneyStatus, MessageKind, RevenueLine, Stage
from models.track_types import OutcomeSpec, SequenceSpec, StepSpec, TrackSpec
from workflows.catalog import (
    DEFAULT_SERVICE,
    FAMILIES,
    LINE_OF_FAMILY,
    SERVICES,
    Service,
    find_service,
    with_overrides,
)

LIBRARY_VERSION = 2  # 2: the consult outcome is asked of the EMR before staff are asked

MIN = 1
HOUR = 60
DAY = 24 * HOUR
WEEK = 7 * DAY

CARE = MessageKind.CARE
MARKETING = MessageKind.MARKETING

# Purposes: the slots of a track, and the stage each runs in.
PURPOSE_STAGE: dict[str, Stage] = {
    "new_lead": Stage.SPEED_TO_LEAD,
    "cancel_recovery": Stage.SPEED_TO_LEAD,
    "consult_reminders": Stage.CONSULT_BOOKED,
    "awaiting_outcome": Stage.CONSULT_SHOW,
    "no_show_recovery": Stage.CONSULT_SHOW,
    "quote_follow_up": Stage.TREATMENT,
    "post_treatment": Stage.REBOOK,
    "review_referral": Stage.REVIEWS_REFERRALS,
    "reactivation_quiet_quote": Stage.REACTIVATION,
    "reactivation_lapsed": Stage.REACTIVATION,
    "reactivation_cold_lead": Stage.REACTIVATION,
}
SHARED_PURPOSES = (
    "cancel_recovery",
    "awaiting_outcome",
    "no_show_recovery",
    "reactivation_quiet_quote",
    "reactivation_cold_lead",
)

REPLY = StepSpec(
    "reply", 0, "inquiry_reply", MessageKind.REPLY, grace_minutes=30 * DAY, immediate_reply=True
)


def _step(
    key: str, offset: int, template: str, kind: MessageKind = MARKETING, **kw: object
) -> StepSpec:
    return StepSpec(key, offset, template, kind, **kw)  # type: ignore[arg-type]


def _to(
    stage: Stage, sequence: str, after: int, reason: str, when: str | None = None
) -> OutcomeSpec:
    return OutcomeSpec(after, reason, stage=stage, sequence=sequence, when=when)


def _end(status: JourneyStatus, after: int, reason: str, when: str | None = None) -> OutcomeSpec:
    return OutcomeSpec(after, reason, exit_status=status, when=when)


def _kind(line: RevenueLine) -> str:
    """Surgical leads deliberate for weeks; dermatology is medical; the rest are aesthetic."""
    if line is RevenueLine.SURGICAL:
        return "surgical"
    if line is RevenueLine.DERMATOLOGY:
        return "derm"
    return "aesthetic"


# ---- sequences a line shares ---------------------------------------------------------------


def _shared(line: RevenueLine) -> dict[str, SequenceSpec]:
    kind = _kind(line)
    slow = kind == "surgical"
    p = line.value

    def seq(
        purpose: str, description: str, steps: list[StepSpec], outcomes: list[OutcomeSpec]
    ) -> SequenceSpec:
        return SequenceSpec(
            f"{p}.{purpose}", purpose, PURPOSE_STAGE[purpose], description, steps, outcomes
        )

    cold = _to(Stage.REACTIVATION, "reactivation_cold_lead", 0, "")
    return {
        "awaiting_outcome": seq(
            "awaiting_outcome",
            "The consult time passed and neither arrival nor no-show was heard: the EMR is "
            "asked three hours later, then a staff task at two days.",
            [
                StepSpec("outcome_check", 3 * HOUR, check="consult_outcome", grace_minutes=DAY),
                StepSpec(
                    "outcome_unknown",
                    2 * DAY,
                    task="consult_outcome_unknown",
                    grace_minutes=30 * DAY,
                ),
            ],
            [replace(cold, after_minutes=14 * DAY, reason="consult outcome never reported")],
        ),
        "no_show_recovery": seq(
            "no_show_recovery",
            "A missed consult: a care note at once, then rebooking nudges with the booking link.",
            [
                _step("no_show_1", 15 * MIN, "no_show_rebook_1", CARE),
                _step("no_show_2", (2 if slow else 1) * DAY, "no_show_rebook_2"),
                _step("no_show_3", (5 if slow else 3) * DAY, "no_show_rebook_3"),
            ],
            [replace(cold, after_minutes=(14 if slow else 7) * DAY, reason="no-show not rebooked")],
        ),
        "cancel_recovery": seq(
            "cancel_recovery",
            "A cancelled appointment: confirm the cancellation, then offer a new time.",
            [
                _step("cancel_1", 15 * MIN, "cancel_rebook_1", CARE),
                _step("cancel_2", (3 if slow else 2) * DAY, "cancel_rebook_2"),
            ],
            [
                replace(
                    cold,
                    after_minutes=(14 if slow else 7) * DAY,
                    reason="cancelled and not rebooked",
                )
            ],
        ),
        "reactivation_quiet_quote": seq(
            "reactivation_quiet_quote",
            "A quote that went quiet: three notes over a month, then the journey closes.",
            [
                _step("quote_reactivate_1", 1 * HOUR, f"reactivation_quote_{kind}_1"),
                _step("quote_reactivate_2", (21 if slow else 14) * DAY, "reactivation_quote_2"),
                _step("quote_reactivate_3", (45 if slow else 30) * DAY, "reactivation_quote_3"),
            ],
            [_end(JourneyStatus.CLOSED_LOST, (60 if slow else 45) * DAY, "quote never accepted")],
        ),
        "reactivation_cold_lead": seq(
            "reactivation_cold_lead",
            "A lead that never booked (or never came): a last, low-pressure series.",
            [
                _step("cold_reactivate_1", 1 * HOUR, f"reactivation_cold_{kind}_1"),
                _step("cold_reactivate_2", 14 * DAY, "reactivation_cold_2"),
                _step("cold_reactivate_3", 30 * DAY, "reactivation_cold_3"),
            ],
            [_end(JourneyStatus.CLOSED_LOST, 45 * DAY, "no response to reactivation")],
        ),
    }


# ---- sequences written for a family --------------------------------------------------------


def _new_lead(family: str, kind: str) -> SequenceSpec:
    days: tuple[int, ...]
    if kind == "surgical":
        days, generic, cold_after = (1, 3, 7, 14, 30), "nurture_surgical", 45
    elif kind == "derm":
        days, generic, cold_after = (1, 4), "nurture_derm", 10
    else:
        days, generic, cold_after = (1, 3, 7), "nurture_aesthetic", 14
    steps = [REPLY, _step(f"nurture_d{days[0]}", days[0] * DAY, f"nurture_{family}")]
    steps += [
        _step(f"nurture_d{d}", d * DAY, f"{generic}_{i}") for i, d in enumerate(days[1:], start=2)
    ]
    pace = "over weeks" if kind == "surgical" else "over days"
    return SequenceSpec(
        f"{family}.new_lead",
        "new_lead",
        Stage.SPEED_TO_LEAD,
        f"First reply in seconds, then nurture {pace} until a consult is booked.",
        steps,
        [_to(Stage.REACTIVATION, "reactivation_cold_lead", cold_after * DAY, "lead went cold")],
    )


def _consult_reminders(family: str, kind: str) -> SequenceSpec:
    # Reminders are care: pointless once their moment has gone by an hour.
    if kind == "surgical":
        steps = [
            _step("prep_7d", -7 * DAY, f"consult_prep_{family}", CARE, grace_minutes=HOUR),
            _step("reminder_2d", -2 * DAY, "consult_reminder_2d", CARE, grace_minutes=HOUR),
            _step("reminder_1d", -1 * DAY, "consult_reminder_1d", CARE, grace_minutes=HOUR),
            _step("reminder_2h", -2 * HOUR, "consult_reminder_2h", CARE, grace_minutes=HOUR),
        ]
        description = "Pre-consult preparation a week out, then reminders at T-2d, T-1d, T-2h."
    else:
        steps = [
            _step("prep_2d", -2 * DAY, f"consult_prep_{family}", CARE, grace_minutes=HOUR),
            _step("reminder_1d", -1 * DAY, "consult_reminder_1d", CARE, grace_minutes=HOUR),
            _step("reminder_2h", -2 * HOUR, "consult_reminder_2h", CARE, grace_minutes=HOUR),
        ]
        description = "What to expect two days out, then reminders at T-1d and T-2h."
    return SequenceSpec(
        f"{family}.consult_reminders",
        "consult_reminders",
        Stage.CONSULT_BOOKED,
        description + " Moved with the appointment.",
        steps,
        [
            OutcomeSpec(
                0, "consult time arrived", stage=Stage.CONSULT_SHOW, sequence="awaiting_outcome"
            )
        ],
    )


def _quote_follow_up(family: str, kind: str) -> SequenceSpec:
    days: tuple[int, ...]
    if kind == "surgical":
        days, quiet = (1, 4, 10, 21, 35), 50
    elif kind == "derm":
        days, quiet = (1, 7), 14
    else:
        days, quiet = (1, 3, 7), 14
    steps = [_step(f"quote_d{days[0]}", days[0] * DAY, f"quote_{family}")]
    steps += [
        _step(f"quote_d{d}", d * DAY, f"quote_follow_up_{i}")
        for i, d in enumerate(days[1:], start=2)
    ]
    return SequenceSpec(
        f"{family}.quote_follow_up",
        "quote_follow_up",
        Stage.TREATMENT,
        "After the consult, follow the plan up until treatment is recorded or it goes quiet.",
        steps,
        [_to(Stage.REACTIVATION, "reactivation_quiet_quote", quiet * DAY, "quote went quiet")],
    )


def _review_referral(family: str, service: Service, kind: str) -> SequenceSpec:
    """The review ask goes to every patient (no review gating), when results show."""
    if kind == "surgical":
        day, when = 60, None  # week 6 to month 3
    elif service.results_check_days:
        day, when = service.results_check_days + 7, "series_done"
    elif service.is_series:
        day, when = 14, "series_done"
    else:
        day, when = 14, None
    review = "review_ask_surgical" if kind == "surgical" else "review_ask"
    return SequenceSpec(
        f"{family}.review_referral",
        "review_referral",
        Stage.REVIEWS_REFERRALS,
        "Review ask to everyone when results show, then a referral ask with the patient's link.",
        [
            _step("review_ask", day * DAY, review, branch=Stage.REVIEWS_REFERRALS, when=when),
            _step("referral_ask", (day + 7) * DAY, "referral_ask", when=when),
        ],
        [],
    )


def _post_treatment(family: str, service: Service, kind: str) -> SequenceSpec:
    lapsed = "reactivation_lapsed"
    steps: list[StepSpec]
    outcomes: list[OutcomeSpec]
    if kind == "surgical":
        cadence = (
            ("d1", 1),
            ("w1", 7),
            ("w2", 14),
            ("w6", 42),
            ("m3", 91),
            ("m6", 182),
            ("m12", 365),
        )
        steps = [
            _step(
                f"post_op_{name}",
                day * DAY,
                f"post_op_{family}_d1" if name == "d1" else f"post_op_{name}",
                CARE,
            )
            for name, day in cadence
        ]
        steps.append(_step("cross_sell", 380 * DAY, "cross_sell_maintenance"))
        outcomes = [_end(JourneyStatus.CLOSED_WON, 400 * DAY, "post-op cadence complete")]
        description = (
            "Post-op care check-ins (day 1 to month 12; a worried reply goes to staff), then a "
            "maintenance cross-sell."
        )
    elif service.is_series:
        gap = service.session_interval_days or 42
        package = service.results_check_days is not None
        # The booking nudge comes a week before the session is due (half the gap for short
        # gaps), so the patient can book on time; the missed-session nudge two weeks after.
        ahead = max(gap - 7, gap // 2, 1)
        steps = [
            _step("next_session", ahead * DAY, f"next_session_{family}", CARE, when="series_open"),
            _step("missed_session", (gap + 14) * DAY, "series_missed_session", when="series_open"),
        ]
        if package:
            steps.append(
                _step(
                    "results_check",
                    (service.results_check_days or 84) * DAY,
                    f"results_check_{family}",
                    CARE,
                    when="series_done",
                )
            )
        maintain = service.maintenance_days or 365
        steps.append(
            _step("maintenance", maintain * DAY, f"maintenance_{family}", when="series_done")
        )
        outcomes = [
            _to(
                Stage.REACTIVATION,
                lapsed,
                (gap + 35) * DAY,
                "package left unfinished" if package else "series left unfinished",
                when="series_open",
            ),
            _end(
                JourneyStatus.CLOSED_WON,
                (maintain + 60) * DAY,
                "package complete" if package else "series complete",
                when="series_done",
            ),
        ]
        what = "package" if package else "series"
        description = (
            f"Next session every {gap} days, a nudge when one is missed, "
            + ("a results check, " if package else "")
            + f"then a maintenance offer when the {what} is done."
        )
    else:
        due = service.recall_days or 365
        first = max(due - 14, service.min_interval_days - 14 if service.min_interval_days else 0)
        steps = [
            _step("recall_upcoming", first * DAY, f"recall_upcoming_{family}"),
            _step("recall_due", due * DAY, f"recall_due_{family}"),
            _step("recall_follow_up", (due + 10) * DAY, "recall_follow_up"),
            _step("recall_last", (due + 30) * DAY, "recall_last"),
        ]
        outcomes = [_to(Stage.REACTIVATION, lapsed, (due + 60) * DAY, "recall lapsed")]
        description = (
            f"Recall due {due} days after the visit (a heads-up two weeks before, never sooner "
            "than allowed), then two follow-ups."
        )
    return SequenceSpec(
        f"{family}.post_treatment", "post_treatment", Stage.REBOOK, description, steps, outcomes
    )


def _reactivation_lapsed(family: str, service: Service) -> SequenceSpec:
    what = "unfinished series" if service.is_series else "lapsed recall"
    return SequenceSpec(
        f"{family}.reactivation_lapsed",
        "reactivation_lapsed",
        Stage.REACTIVATION,
        f"Win back a {what}: three notes over a month, then the journey closes.",
        [
            _step("lapsed_1", 1 * HOUR, f"reactivation_lapsed_{family}"),
            _step("lapsed_2", 14 * DAY, "reactivation_lapsed_2"),
            _step("lapsed_3", 30 * DAY, "reactivation_lapsed_3"),
        ],
        [_end(JourneyStatus.CLOSED_LOST, 45 * DAY, "no response to reactivation")],
    )


def build_track(family: str, service: Service) -> TrackSpec:
    """The library's track for a family, with `service`'s rhythm. No practice edits."""
    line = LINE_OF_FAMILY[family]
    kind = _kind(line)
    sequences = {
        **_shared(line),
        "new_lead": _new_lead(family, kind),
        "consult_reminders": _consult_reminders(family, kind),
        "quote_follow_up": _quote_follow_up(family, kind),
        "post_treatment": _post_treatment(family, service, kind),
        "review_referral": _review_referral(family, service, kind),
    }
    if kind != "surgical":
        # A post-op cadence ends the journey (closed_won): there is no lapsed recall to win
        # back; the maintenance cross-sell is the surgical patient's way back in.
        sequences["reactivation_lapsed"] = _reactivation_lapsed(family, service)
    return TrackSpec(
        id=f"{line.value}.{family}",
        line=line,
        family=family,
        service=service.key,
        version=f"{LIBRARY_VERSION}.0",
        series_sessions=service.series_sessions if service.is_series else 0,
        sequences=sequences,
    )


# ---- practice overrides --------------------------------------------------------------------


@dataclass
class TrackOverride:
    """A practice's edits to one track, by `purpose.step_key`: steps switched off, moved
    (offset in minutes from the sequence's anchor) or sending another template."""

    disabled: list[str] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)


@dataclass
class PracticeLibrary:
    """Everything a practice has changed; `revision` counts its saves."""

    revision: int = 0
    services: dict[str, dict[str, int | None]] = field(default_factory=dict)
    tracks: dict[str, TrackOverride] = field(default_factory=dict)


def _apply(track: TrackSpec, edit: TrackOverride) -> TrackSpec:
    sequences = {}
    for purpose, seq in track.sequences.items():
        steps = []
        for step in seq.steps:
            ref = f"{purpose}.{step.key}"
            if ref in edit.disabled:
                continue
            if ref in edit.offsets:
                step = replace(step, offset_minutes=edit.offsets[ref])
            if ref in edit.templates:
                step = replace(step, template=edit.templates[ref])
            steps.append(step)
        sequences[purpose] = replace(seq, steps=steps)
    return replace(track, sequences=sequences)


def track_id(line: RevenueLine, family: str) -> str:
    return f"{line.value}.{family}"


def family_for(line: RevenueLine, service_key: str | None) -> tuple[str, Service]:
    """The family and catalog service a journey on `line` follows: the named service's when it
    belongs to the line, otherwise the line's default family."""
    service = find_service(service_key)
    if service is None or service.line is not line:
        family = FAMILIES[line][0]
        service = SERVICES[DEFAULT_SERVICE[family]]
    return service.family, service


def resolve_track(
    line: RevenueLine, service_key: str | None, practice: PracticeLibrary | None = None
) -> TrackSpec:
    """The track a journey runs for `line` and `service_key`, with the practice's edits."""
    practice = practice or PracticeLibrary()
    family, service = family_for(RevenueLine(line), service_key)
    service = with_overrides(service, practice.services.get(service.key, {}))
    track = build_track(family, service)
    edit = practice.tracks.get(track.id)
    if edit is not None:
        track = _apply(track, edit)
    return replace(track, version=f"{LIBRARY_VERSION}.{practice.revision}")


def track_ids() -> list[str]:
    return [track_id(line, fam) for line, fams in FAMILIES.items() for fam in fams]


def default_track(tid: str) -> TrackSpec | None:
    line_value, _, family = tid.partition(".")
    if family not in LINE_OF_FAMILY or LINE_OF_FAMILY[family].value != line_value:
        return None
    return build_track(family, SERVICES[DEFAULT_SERVICE[family]])


def library_sequences(tracks: Iterable[TrackSpec] | None = None) -> dict[str, SequenceSpec]:
    """Every distinct ready sequence, by id (shared ones appear once)."""
    found: dict[str, SequenceSpec] = {}
    for track in tracks if tracks is not None else (default_track(t) for t in track_ids()):
        assert track is not None
        for seq in track.sequences.values():
            found.setdefault(seq.id, seq)
    return found


def templates_used(track: TrackSpec) -> set[str]:
    return {
        step.template
        for seq in track.sequences.values()
        for step in seq.steps
        if step.template is not None
    }
