"""Issue 3's multi-year journeys, one per line, under the time-skipping server: the exact
schedule of messages (local time in the practice's zone, template id), checked three ways —
against the table below (the schedule by hand, to the day), against the preview of the same
scenario (the preview is what the workflow sends), and for bounded history per run."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowHandle

from tests.workflows.conftest import Harness
from tests.workflows.scenarios import SCENARIOS, drive, preview_of, treated

# (local time, template). Read against the catalog: tox recall heads-up at day 76 and due at
# day 90 (never sooner), the review ask at most once a year; laser body hair removal every 49
# days (booking nudge a week ahead), session 4 late after the missed-session nudge at day 63;
# post-op day 1 to month 12 (Texas opens at 9am, so the 8am day-1 check-in waits); the body
# contouring package's results check at 12 weeks and maintenance at 6 months; a yearly skin
# check in Florida.
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "tox_two_years": [
        ("2027-01-04 09:00", "inquiry_reply"),
        ("2027-01-05 09:00", "nurture_tox"),
        ("2027-01-05 14:00", "consult_prep_tox"),
        ("2027-01-06 14:00", "consult_reminder_1d"),
        ("2027-01-07 12:00", "consult_reminder_2h"),
        ("2027-01-21 15:00", "review_ask"),
        ("2027-01-28 15:00", "referral_ask"),
        ("2027-03-24 16:00", "recall_upcoming_tox"),
        ("2027-04-07 16:00", "recall_due_tox"),
        ("2027-06-27 15:00", "recall_upcoming_tox"),
        ("2027-07-11 15:00", "recall_due_tox"),
        ("2027-09-30 15:00", "recall_upcoming_tox"),
        ("2027-10-14 15:00", "recall_due_tox"),
        ("2028-01-03 14:00", "recall_upcoming_tox"),
        ("2028-01-17 14:00", "recall_due_tox"),
        ("2028-02-05 15:00", "review_ask"),
        ("2028-02-12 15:00", "referral_ask"),
        ("2028-04-07 16:00", "recall_upcoming_tox"),
        ("2028-04-21 16:00", "recall_due_tox"),
        ("2028-07-11 15:00", "recall_upcoming_tox"),
        ("2028-07-25 15:00", "recall_due_tox"),
        ("2028-10-14 15:00", "recall_upcoming_tox"),
        ("2028-10-28 15:00", "recall_due_tox"),
        ("2029-01-17 14:00", "recall_upcoming_tox"),
        ("2029-01-31 14:00", "recall_due_tox"),
        ("2029-02-10 14:00", "recall_follow_up"),
        ("2029-03-02 14:00", "recall_last"),
    ],
    "laser_series_of_eight": [
        ("2027-01-04 09:00", "inquiry_reply"),
        ("2027-01-05 09:00", "nurture_laser_hair"),
        ("2027-01-09 14:00", "consult_prep_laser_hair"),
        ("2027-01-10 14:00", "consult_reminder_1d"),
        ("2027-01-11 12:00", "consult_reminder_2h"),
        ("2027-02-22 15:00", "next_session_laser_hair"),
        ("2027-04-12 16:00", "next_session_laser_hair"),
        ("2027-05-31 15:00", "next_session_laser_hair"),
        ("2027-06-21 15:00", "series_missed_session"),
        ("2027-08-05 15:00", "next_session_laser_hair"),
        ("2027-09-23 15:00", "next_session_laser_hair"),
        ("2027-11-11 14:00", "next_session_laser_hair"),
        ("2027-12-30 15:00", "next_session_laser_hair"),
        ("2028-01-20 15:00", "review_ask"),
        ("2028-01-27 15:00", "referral_ask"),
        ("2029-01-05 15:00", "maintenance_laser_hair"),
    ],
    "surgical_through_twelve_months": [
        ("2027-01-04 09:00", "inquiry_reply"),
        ("2027-01-05 09:00", "nurture_breast"),
        ("2027-01-07 09:00", "nurture_surgical_2"),
        ("2027-01-09 14:00", "consult_prep_breast"),
        ("2027-01-14 14:00", "consult_reminder_2d"),
        ("2027-01-15 14:00", "consult_reminder_1d"),
        ("2027-01-16 12:00", "consult_reminder_2h"),
        ("2027-01-17 13:55", "quote_breast"),
        ("2027-01-20 13:55", "quote_follow_up_2"),
        ("2027-01-26 13:55", "quote_follow_up_3"),
        ("2027-02-06 13:55", "quote_follow_up_4"),
        ("2027-02-19 09:00", "post_op_breast_d1"),
        ("2027-02-25 09:00", "post_op_w1"),
        ("2027-03-04 09:00", "post_op_w2"),
        ("2027-04-01 09:00", "post_op_w6"),
        ("2027-04-19 09:00", "review_ask_surgical"),
        ("2027-04-26 09:00", "referral_ask"),
        ("2027-05-20 09:00", "post_op_m3"),
        ("2027-08-19 09:00", "post_op_m6"),
        ("2028-02-18 09:00", "post_op_m12"),
        ("2028-03-04 09:00", "cross_sell_maintenance"),
    ],
    "body_contouring_package": [
        ("2027-01-04 09:00", "inquiry_reply"),
        ("2027-01-05 09:00", "nurture_cryolipolysis"),
        ("2027-01-06 14:00", "consult_prep_cryolipolysis"),
        ("2027-01-07 14:00", "consult_reminder_1d"),
        ("2027-01-08 12:00", "consult_reminder_2h"),
        ("2027-02-26 15:00", "next_session_cryolipolysis"),
        ("2027-05-28 16:00", "results_check_cryolipolysis"),
        ("2027-06-04 16:00", "review_ask"),
        ("2027-06-11 16:00", "referral_ask"),
        ("2027-09-01 16:00", "maintenance_cryolipolysis"),
        ("2027-10-30 15:00", "next_session_cryolipolysis"),
        ("2027-11-20 14:00", "series_missed_session"),
        ("2027-12-11 15:00", "reactivation_lapsed_cryolipolysis"),
        ("2027-12-25 14:00", "reactivation_lapsed_2"),
        ("2028-01-10 14:00", "reactivation_lapsed_3"),
    ],
    "skin_check_recall": [
        ("2027-01-04 09:00", "inquiry_reply"),
        ("2027-01-05 09:00", "nurture_skin_check"),
        ("2027-01-12 14:00", "consult_prep_skin_check"),
        ("2027-01-13 14:00", "consult_reminder_1d"),
        ("2027-01-14 12:00", "consult_reminder_2h"),
        ("2027-01-28 15:00", "review_ask"),
        ("2027-02-04 15:00", "referral_ask"),
        ("2027-12-31 15:00", "recall_upcoming_skin_check"),
        ("2028-01-14 15:00", "recall_due_skin_check"),
        ("2028-02-02 15:00", "review_ask"),
        ("2028-02-09 15:00", "referral_ask"),
        ("2029-01-04 15:00", "recall_upcoming_skin_check"),
        ("2029-01-18 15:00", "recall_due_skin_check"),
        ("2029-01-28 15:00", "recall_follow_up"),
        ("2029-02-17 15:00", "recall_last"),
        ("2029-03-19 17:00", "reactivation_lapsed_skin_check"),
        ("2029-04-02 16:00", "reactivation_lapsed_2"),
        ("2029-04-18 16:00", "reactivation_lapsed_3"),
    ],
}
# Events per run stay bounded however many years pass (continue-as-new at each cycle).
MAX_EVENTS_PER_RUN = 250


async def runs_of(handle: WorkflowHandle) -> list[int]:
    """History length of each run of the chain, first to last."""
    client = handle._client
    run_id = handle.first_execution_run_id or handle.result_run_id
    lengths = []
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        attrs = last.workflow_execution_continued_as_new_event_attributes
        run_id = (
            attrs.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return lengths


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_multi_year_schedule(harness: Harness, name: str) -> None:
    line, scenario = SCENARIOS[name]()
    seeded = harness.seed(line=line, timezone=scenario.timezone, state=scenario.state)
    handle = await drive(harness, seeded, scenario)

    zone = ZoneInfo(scenario.timezone)
    sent = [
        (m.sent_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), m.template)
        for m in harness.sent(seeded)
        if m.sent_at is not None
    ]
    assert sent == EXPECTED[name]

    planned = preview_of(line, scenario)
    previewed = [(e.local[:16].replace("T", " "), e.what) for e in planned.messages]
    assert previewed == sent, "the preview differs from what the journey sent"

    lengths = await runs_of(handle)
    assert len(lengths) == planned.runs
    print(f"{name}: {len(lengths)} runs, history events per run {lengths}")
    assert max(lengths) <= MAX_EVENTS_PER_RUN


async def test_ten_years_of_tox_stay_bounded(harness: Harness) -> None:
    """A patient treated every 95 days for ten years: 39 cycles, each a fresh run, none of
    them longer than the first cycles'."""
    line, scenario = SCENARIOS["tox_two_years"]()
    days = [3 + 95 * n for n in range(39)]
    scenario.events = [*scenario.events[:2], *(treated(d, "botox") for d in days)]
    scenario.horizon_days = 3660
    seeded = harness.seed(line=line, timezone=scenario.timezone, state=scenario.state)
    handle = await drive(harness, seeded, scenario)
    lengths = await runs_of(handle)
    print(f"ten years of tox: {len(lengths)} runs, history events per run {lengths}")
    assert len(lengths) == 40
    assert max(lengths) <= MAX_EVENTS_PER_RUN
    assert max(lengths[2:]) <= max(lengths[:2])  # year ten costs what year one did
    sent = [m.template for m in harness.sent(seeded)]
    assert sent.count("recall_due_tox") == 38  # the last cycle runs past the horizon
    assert sent.count("review_ask") == 10  # once a year, to everyone
