"""Journeys through the stages under the time-skipping server: months pass in seconds, and
every assertion reads what the real activities wrote to the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.enums import EventType, RevenueLine
from tests.seed import Seeded, suppress
from tests.workflows.conftest import Harness
from workflows.journey import JourneyWorkflow

D = timedelta(days=1)
H = timedelta(hours=1)


async def at_local(h: Harness, tz: str, weekday: int, hour: int) -> datetime:
    """Skip the server clock forward to the next `weekday` (Mon=0) at `hour`:00 local."""
    zone = ZoneInfo(tz)
    now = (await h.now()).astimezone(zone)
    target = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    target += timedelta(days=(weekday - now.weekday()) % 7)
    if target <= now:
        target += timedelta(days=7)
    await h.advance_to(target)
    return target


def local(dt: datetime | None, tz: str) -> datetime:
    assert dt is not None
    return dt.astimezone(ZoneInfo(tz))


def stage_path(h: Harness, seeded: Seeded) -> list[str]:
    """The main-stage path (the review-ask branch left out)."""
    return [s.to_stage for s in h.stages(seeded) if s.reason != "review_ask sent"]


async def test_saturday_morning_inquiry_answered_at_once(harness: Harness) -> None:
    """07:00 on a Saturday in Texas is outside the send window, yet the reply to the inquiry
    the patient just made goes out at once; the next day's nurture waits for Sunday noon."""
    tz = "America/Chicago"
    seeded = harness.seed(state="TX", timezone=tz)
    inquired = await at_local(harness, tz, weekday=5, hour=7)
    await harness.start(seeded)
    await harness.settle()
    [reply] = harness.sent(seeded)
    assert reply.template == "inquiry_reply"
    assert reply.sent_at is not None and reply.sent_at - inquired < timedelta(minutes=1)
    assert reply.channel == "sms"
    assert harness.tasks(seeded) == ["new_lead"]

    await harness.advance(D + 6 * H)  # Sunday 13:00
    nurture = next(m for m in harness.sent(seeded) if m.template == "nurture_tox")
    sent = local(nurture.sent_at, tz)
    assert (sent.weekday(), sent.hour, sent.minute) == (6, 12, 0)  # TX Sundays open at noon


async def test_nurture_stops_the_moment_a_consult_is_booked(harness: Harness) -> None:
    tz = "America/Los_Angeles"
    seeded = harness.seed(timezone=tz)
    start = await at_local(harness, tz, weekday=0, hour=10)
    handle = await harness.start(seeded)
    await harness.advance(D + H)
    assert [m.template for m in harness.sent(seeded)] == ["inquiry_reply", "nurture_tox"]

    appointment = start + 5 * D + 5 * H  # Saturday 15:00
    await harness.signal(handle, EventType.CONSULT_BOOKED, appointment_at=appointment)
    await harness.advance(10 * D)
    templates = [m.template for m in harness.sent(seeded)]
    assert templates == [
        "inquiry_reply",
        "nurture_tox",
        "consult_prep_tox",  # what to expect, two days out
        "consult_reminder_1d",
        "consult_reminder_2h",
    ]
    assert stage_path(harness, seeded) == [
        "inquiry",
        "speed_to_lead",
        "consult_booked",
        "consult_show",
    ]
    # Neither arrived nor no-show was heard: staff are asked two days after the consult.
    assert "consult_outcome_unknown" in harness.tasks(seeded)


async def test_reminders_move_with_a_reschedule(harness: Harness) -> None:
    tz = "America/New_York"
    seeded = harness.seed(line=RevenueLine.SURGICAL, state="NY", timezone=tz)
    start = await at_local(harness, tz, weekday=0, hour=9)
    handle = await harness.start(seeded)
    await harness.signal(handle, EventType.CONSULT_BOOKED, appointment_at=start + 10 * D + 6 * H)
    await harness.advance(H)
    moved = start + 20 * D + 6 * H  # three weeks out, 15:00
    await harness.signal(handle, EventType.APPOINTMENT_RESCHEDULED, appointment_at=moved)
    await harness.advance(21 * D)
    reminders = {m.template: m.sent_at for m in harness.sent(seeded) if "consult_" in m.template}
    expected = {
        "consult_prep_surgery": moved - 7 * D,
        "consult_reminder_2d": moved - 2 * D,
        "consult_reminder_1d": moved - D,
        "consult_reminder_2h": moved - 2 * H,
    }
    assert reminders.keys() == expected.keys()
    for name, at in expected.items():
        sent_at = reminders[name]
        assert sent_at is not None and timedelta(0) <= sent_at - at < timedelta(minutes=1), name
    state = await handle.query(JourneyWorkflow.state)
    assert state.appointment_at == moved


async def test_a_reminder_whose_time_has_passed_is_skipped(harness: Harness) -> None:
    tz = "America/New_York"
    seeded = harness.seed(line=RevenueLine.SURGICAL, state="NY", timezone=tz)
    start = await at_local(harness, tz, weekday=0, hour=9)
    handle = await harness.start(seeded)
    await harness.signal(handle, EventType.CONSULT_BOOKED, appointment_at=start + 10 * D + 6 * H)
    await harness.advance(2 * D)
    sooner = start + 3 * D + 6 * H  # 36 hours away: the 7-day and 2-day reminders have passed
    await harness.signal(handle, EventType.APPOINTMENT_RESCHEDULED, appointment_at=sooner)
    await harness.advance(2 * D)
    templates = [m.template for m in harness.messages(seeded) if "reminder" in m.template]
    assert templates == ["consult_reminder_1d", "consult_reminder_2h"]


async def test_no_show_recovery_then_reactivation(harness: Harness) -> None:
    tz = "America/Los_Angeles"
    seeded = harness.seed(timezone=tz)
    start = await at_local(harness, tz, weekday=1, hour=10)
    handle = await harness.start(seeded)
    appointment = start + 2 * D + 4 * H
    await harness.signal(handle, EventType.CONSULT_BOOKED, appointment_at=appointment)
    await harness.advance_to(appointment + H)
    await harness.signal(handle, EventType.NO_SHOW)
    await harness.advance(H)
    recovery = [m for m in harness.sent(seeded) if m.template.startswith("no_show")]
    assert [m.template for m in recovery] == ["no_show_rebook_1"]
    assert "{{" not in (recovery[0].body or "") and "book.example.com" in (recovery[0].body or "")
    await harness.advance(8 * D)
    templates = [m.template for m in harness.sent(seeded)]
    assert [t for t in templates if t.startswith("no_show")] == [
        "no_show_rebook_1",
        "no_show_rebook_2",
        "no_show_rebook_3",
    ]
    assert stage_path(harness, seeded)[-3:] == ["consult_show", "consult_show", "reactivation"]
    assert "reactivation_cold_aesthetic_1" in templates


async def test_stop_on_reply_pauses_nurture_and_raises_a_task(harness: Harness) -> None:
    seeded = harness.seed()
    await at_local(harness, "America/Los_Angeles", weekday=2, hour=10)
    handle = await harness.start(seeded)
    await harness.advance(D + H)
    await harness.signal(handle, EventType.PATIENT_REPLIED, channel="sms")
    await harness.advance(10 * D)
    assert [m.template for m in harness.sent(seeded)] == ["inquiry_reply", "nurture_tox"]
    assert "patient_replied" in harness.tasks(seeded)
    assert harness.journey(seeded).status == "paused"
    # A booking is the conversation moving forward: reminders (care) go out.
    await harness.signal(
        handle, EventType.CONSULT_BOOKED, appointment_at=(await harness.now()) + 3 * D
    )
    await harness.advance(3 * D)
    assert "consult_reminder_1d" in [m.template for m in harness.sent(seeded)]


async def test_opt_out_ends_all_sends(harness: Harness) -> None:
    seeded = harness.seed()
    await at_local(harness, "America/Los_Angeles", weekday=2, hour=10)
    handle = await harness.start(seeded)
    await harness.settle()
    await harness.signal(handle, EventType.OPTED_OUT)
    result = await handle.result()
    assert result.status == "opted_out"
    await harness.advance(30 * D)
    assert [m.template for m in harness.messages(seeded)] == ["inquiry_reply"]
    journey = harness.journey(seeded)
    assert (journey.status, journey.exit_reason) == ("opted_out", "patient opted out")


async def test_opting_out_of_one_channel_moves_to_the_other(harness: Harness) -> None:
    seeded = harness.seed()
    await at_local(harness, "America/Los_Angeles", weekday=2, hour=10)
    handle = await harness.start(seeded)
    await harness.settle()
    # The API suppresses the channel in the database and signals; the gate reads the database.
    suppress(harness.engine, seeded.patient.id, sms=True)
    await harness.signal(handle, EventType.OPTED_OUT, channel="sms")
    await harness.advance(D + H)
    nurture = next(m for m in harness.sent(seeded) if m.template == "nurture_tox")
    assert nurture.channel == "email"
    assert harness.journey(seeded).status == "active"


async def test_injectables_recall_around_day_90_and_not_before(harness: Harness) -> None:
    tz = "America/Los_Angeles"
    seeded = harness.seed(timezone=tz)
    await at_local(harness, tz, weekday=3, hour=11)
    handle = await harness.start(seeded)
    treated = await harness.now()
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, service="tox", amount=450.0)
    await harness.advance(89 * D)
    assert "recall_due_tox" not in [m.template for m in harness.messages(seeded)]
    review = next(m for m in harness.sent(seeded) if m.template == "review_ask")
    assert review.sent_at is not None
    assert 14 * D <= review.sent_at - treated < 14 * D + timedelta(minutes=1)
    assert "reviews_referrals" in [s.to_stage for s in harness.stages(seeded)]
    assert harness.journey(seeded).stage == "rebook"  # the review ask is a branch

    await harness.advance(2 * D)
    recall = next(m for m in harness.sent(seeded) if m.template == "recall_due_tox")
    assert recall.sent_at is not None
    assert 90 * D <= recall.sent_at - treated < 91 * D


async def test_continue_as_new_carries_state_across_cycles(harness: Harness) -> None:
    seeded = harness.seed(line=RevenueLine.LASER_ENERGY)
    await at_local(harness, "America/Los_Angeles", weekday=0, hour=10)
    handle = await harness.start(seeded)
    first_run = (await handle.describe()).run_id
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, "session-1", service="lhr")
    await harness.settle()
    second_run = (await handle.describe()).run_id
    assert second_run != first_run

    # The same event delivered again after the run changed is still a duplicate.
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, "session-1", service="lhr")
    await harness.advance(42 * D + H)  # the next-session reminder of the series
    state = await handle.query(JourneyWorkflow.state)
    assert (state.cycle, state.treatments, state.stage) == (1, 1, "rebook")
    assert "next_session_laser_hair" in [m.template for m in harness.sent(seeded)]

    await harness.signal(handle, EventType.TREATMENT_COMPLETED, "session-2", service="lhr")
    await harness.settle()
    state = await handle.query(JourneyWorkflow.state)
    assert (state.cycle, state.treatments) == (2, 2)
    assert (await handle.describe()).run_id not in (first_run, second_run)
    # Each cycle's messages get their own keys: the next-session reminder comes again.
    await harness.advance(42 * D + H)
    sent = [m.template for m in harness.sent(seeded)]
    assert sent.count("next_session_laser_hair") == 2
    assert harness.journey(seeded).cycle == 2


async def test_duplicate_events_are_dropped(harness: Harness) -> None:
    seeded = harness.seed()
    handle = await harness.start(seeded)
    appointment = (await harness.now()) + 5 * D
    for _ in range(3):
        await harness.signal(handle, EventType.CONSULT_BOOKED, "evt-1", appointment_at=appointment)
    await harness.settle()
    assert stage_path(harness, seeded).count("consult_booked") == 1


async def test_staff_pause_skips_everything_until_resumed(harness: Harness) -> None:
    seeded = harness.seed()
    await at_local(harness, "America/Los_Angeles", weekday=0, hour=10)
    handle = await harness.start(seeded)
    await harness.signal(handle, EventType.STAFF_PAUSED)
    await harness.advance(2 * D)
    assert [m.template for m in harness.sent(seeded)] == ["inquiry_reply"]
    assert harness.journey(seeded).status == "paused"
    await harness.signal(handle, EventType.STAFF_RESUMED)
    await harness.advance(2 * D)
    assert "nurture_aesthetic_2" in [
        m.template for m in harness.sent(seeded)
    ]  # day 3, after resuming


async def test_search_attributes_follow_the_journey(harness: Harness) -> None:
    seeded = harness.seed()
    handle = await harness.start(seeded)
    await harness.signal(
        handle, EventType.CONSULT_BOOKED, appointment_at=(await harness.now()) + 4 * D
    )
    await harness.settle()
    attrs = (await handle.describe()).typed_search_attributes
    values = {pair.key.name: pair.value for pair in attrs}
    assert values["JourneyStage"] == "consult_booked"
    assert values["PracticeId"] == str(seeded.practice.id)
    assert values["RevenueLine"] == "injectables"
    state = await handle.query(JourneyWorkflow.state)
    assert values["NextActionAt"] == state.next_action_at


EXITS = {
    RevenueLine.SURGICAL: [
        ("reviews_referrals", "review_ask sent"),
        ("rebook", "post-op cadence complete"),
    ],
    RevenueLine.INJECTABLES: [
        ("reviews_referrals", "review_ask sent"),
        ("reactivation", "recall lapsed"),
    ],
    # Series and packages ask for the review when they are complete.
    RevenueLine.LASER_ENERGY: [("reactivation", "series left unfinished")],
    RevenueLine.BODY_CONTOURING: [("reactivation", "package left unfinished")],
    RevenueLine.DERMATOLOGY: [
        ("reviews_referrals", "review_ask sent"),
        ("reactivation", "recall lapsed"),
    ],
}
PATHS = {
    RevenueLine.INJECTABLES: (160 * D, "active", "reactivation"),  # recall lapsed
    RevenueLine.LASER_ENERGY: (90 * D, "active", "reactivation"),  # series left unfinished
    RevenueLine.BODY_CONTOURING: (100 * D, "active", "reactivation"),  # package unfinished
    RevenueLine.DERMATOLOGY: (435 * D, "active", "reactivation"),  # yearly skin check lapsed
    RevenueLine.SURGICAL: (410 * D, "closed_won", "rebook"),  # post-op cadence complete
}


@pytest.mark.parametrize("line", list(RevenueLine))
async def test_each_line_walks_the_map(harness: Harness, line: RevenueLine) -> None:
    seeded = harness.seed(line=line)
    await at_local(harness, "America/Los_Angeles", weekday=0, hour=9)
    handle = await harness.start(seeded)
    appointment = (await harness.now()) + 3 * D + 5 * H
    await harness.signal(handle, EventType.CONSULT_BOOKED, appointment_at=appointment)
    await harness.advance_to(appointment - 10 * 60 * timedelta(seconds=1))
    await harness.signal(handle, EventType.ARRIVED)
    await harness.advance(2 * D)
    await harness.signal(handle, EventType.TREATMENT_COMPLETED, service="first", amount=1000.0)
    wait, status, final_stage = PATHS[line]
    await harness.advance(wait)
    journey = harness.journey(seeded)
    assert (journey.status, journey.stage) == (status, final_stage)
    walked = [(x.to_stage, x.reason) for x in harness.stages(seeded)]
    assert walked == [
        ("inquiry", "inquiry via form"),
        ("speed_to_lead", "journey started"),
        ("consult_booked", "consult booked"),
        ("consult_show", "patient arrived"),
        ("treatment", "consult attended"),
        ("rebook", "treatment completed"),
        *EXITS[line],
    ]
    sent = [m.template for m in harness.sent(seeded)]
    assert any(t.startswith("quote_") for t in sent)
    assert len(sent) == len(set(m.idempotency_key for m in harness.messages(seeded)))


async def test_an_inquiry_as_the_journey_ends_starts_it_afresh(harness: Harness) -> None:
    """Signal-with-start may land on a run that is just ending: the lead must not be lost,
    whether it lands before the run closes (continue-as-new) or after (a new run)."""
    seeded = harness.seed()
    await at_local(harness, "America/Los_Angeles", weekday=2, hour=10)
    handle = await harness.start(seeded)
    await harness.settle()
    await harness.signal(handle, EventType.OPTED_OUT)
    again = await harness.start(seeded)  # the API's signal-with-start for a new inquiry
    await harness.settle()
    state = await again.query(JourneyWorkflow.state)
    assert (state.stage, state.status) == ("speed_to_lead", "active")
    replies = [m for m in harness.sent(seeded) if m.template == "inquiry_reply"]
    assert len(replies) == 2 and replies[0].idempotency_key != replies[1].idempotency_key


async def test_staff_read_the_journey_in_the_ui(harness: Harness) -> None:
    """Current details, timer and activity summaries: what the Temporal UI shows staff."""
    tz = "America/New_York"
    seeded = harness.seed(state="NY", timezone=tz)
    start = await at_local(harness, tz, weekday=0, hour=10)
    handle = await harness.start(seeded)
    await harness.signal(handle, EventType.CONSULT_BOOKED, appointment_at=start + 3 * D + 5 * H)
    await harness.settle()
    meta = await handle.query("__temporal_workflow_metadata")
    details = meta["currentDetails"] if isinstance(meta, dict) else meta.current_details
    assert details.startswith("**consult_booked** (active, cycle 0): waiting until ")
    assert details.endswith(" EST for consult_prep_tox")

    # Summaries are payloads, so the server holds them encrypted; the UI reads them through the
    # codec server (docs/security.md). Decrypt them here as it would.
    codec = harness.client.data_converter.payload_codec
    assert codec is not None
    summaries = []
    async for event in handle.fetch_history_events():
        if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
            assert event.user_metadata.summary.metadata["encoding"] == b"binary/encrypted"
            [summary] = await codec.decode([event.user_metadata.summary])
            summaries.append(summary.data.decode())
    assert '"send inquiry_reply (speed_to_lead)"' in summaries
    assert any("for consult_prep_tox" in s and "EST" in s for s in summaries)
    assert any(s.startswith('"record stage consult_booked: consult booked') for s in summaries)
    # Nothing a patient could be identified by: ids and enums only.
    joined = " ".join(summaries) + details
    assert "Ada" not in joined and "4155550123" not in joined and "example.com" not in joined


async def test_a_patient_enrolled_from_an_emr_booking_gets_no_inquiry_reply(
    harness: Harness,
) -> None:
    """They never wrote to us: no "thanks for reaching out", but the journey runs (staff know,
    and the reminders of the booking the EMR reported will speak to them)."""
    seeded = harness.seed()
    await at_local(harness, "America/Los_Angeles", weekday=2, hour=10)
    handle = await harness.start(seeded, channel="emr")
    await harness.signal(
        handle, EventType.CONSULT_BOOKED, appointment_at=(await harness.now()) + 3 * D
    )
    await harness.advance(3 * D)
    sent = [m.template for m in harness.sent(seeded)]
    assert "inquiry_reply" not in sent
    assert sent == ["consult_prep_tox", "consult_reminder_1d", "consult_reminder_2h"]
    assert stage_path(harness, seeded)[:3] == ["inquiry", "speed_to_lead", "consult_booked"]
