"""The lead-to-revenue map: a practice's CSV export becomes its eight-stage map with numbers that
match a hand count (tests/funnel/synthetic.py), imports report bad rows by line and field without
echoing values, and live journeys feed the same map."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlmodel import Session, select

from models.tables import HistoryPatient, HistoryRecord, Patient
from tests.api.conftest import Api, Tenant, eventually
from tests.funnel import synthetic

CSV = {"Content-Type": "text/csv"}
YEAR = {"from": "2025-01-01", "to": "2026-01-01"}


async def import_csv(
    api: Api, tenant: Tenant, kind: str, text: str, **params: Any
) -> dict[str, Any]:
    r = await api.http.post(
        "/v1/history/imports",
        params={"kind": kind, **params},
        headers=tenant.headers | CSV,
        content=text.encode(),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def import_synthetic(api: Api, tenant: Tenant) -> None:
    for kind, text, rows in (
        ("leads", synthetic.leads_csv(), 11),
        ("appointments", synthetic.appointments_csv(), 7),
        ("treatments", synthetic.treatments_csv(), 4),
    ):
        body = await import_csv(api, tenant, kind, text)
        assert (body["rows"], body["imported"], body["rejected"], body["errors"]) == (
            rows,
            rows,
            0,
            [],
        )


async def funnel(api: Api, tenant: Tenant, **params: Any) -> dict[str, Any]:
    r = await api.http.get("/v1/funnel", params=params, headers=tenant.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def table(body: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    return {
        s["stage"]: (s["entered"], s["advanced"], s["leaked"], s["open"]) for s in body["stages"]
    }


# The hand count of tests/funnel/synthetic.py, stage by stage: (entered, advanced, leaked, open).
HAND_COUNT = {
    # every lead entered and moved on (the journey starts at once)
    "inquiry": (11, 11, 0, 0),
    # P1-P10, P4 again after cancelling, P11; booked: P1-P6; cold: P4 again, P7-P10; open: P11
    "speed_to_lead": (12, 6, 5, 1),
    # P1-P6 and P6's second booking; P4 cancelled
    "consult_booked": (7, 6, 1, 0),
    # the six consults that came round; P3 and P6 (first) did not show
    "consult_show": (6, 4, 2, 0),
    # P1, P2, P5, P6 attended; P5's quote went quiet
    "treatment": (4, 3, 1, 0),
    # P1 (came back), P1 again (still open at the end), P2 and P6 (recall lapsed)
    "rebook": (4, 1, 2, 1),
    # P2-P10 all reached reactivation; none came back (there was no automation)
    "reactivation": (9, 0, 9, 0),
    # P1, P2, P6 were treated; nobody asked for a review or referral
    "reviews_referrals": (3, 0, 3, 0),
}


async def test_an_export_becomes_its_eight_stage_map(api: Api) -> None:
    tenant = await api.create_practice(revenue_lines=["injectables", "laser_energy"])
    await import_synthetic(api, tenant)

    body = await funnel(api, tenant, source="history", **YEAR)
    assert table(body) == HAND_COUNT
    leak = {s["stage"]: s["leak_rate"] for s in body["stages"]}
    assert leak["speed_to_lead"] == round(5 / 11, 4)
    assert leak["consult_show"] == round(2 / 6, 4)
    median = {s["stage"]: s["median_hours_in_stage"] for s in body["stages"]}
    # booked on day 1: 24 h in speed_to_lead for most; consults four days after booking
    assert (median["speed_to_lead"], median["consult_booked"]) == (24.0, 96.0)

    speed = body["speed_to_lead"]
    # answered: 30 s, 2 min, 4 min, 10 min, 30 min, 2 h, 5 h, 2 days; three never
    assert (speed["leads"], speed["answered"], speed["unanswered"]) == (11, 8, 3)
    assert (speed["p50_seconds"], speed["p90_seconds"], speed["p99_seconds"]) == (
        600.0,
        172800.0,
        172800.0,
    )
    assert speed["within_5_min_share"] == round(3 / 11, 4)
    assert [b["count"] for b in speed["histogram"]] == [1, 2, 1, 1, 1, 1, 1]

    assert (body["bookings"], body["no_shows"], body["cancellations"]) == (7, 2, 1)
    assert body["no_show_rate"] == round(2 / 7, 4)
    assert body["no_show_or_cancel_rate"] == round(3 / 7, 4)
    assert body["rebook_rate"] == round(1 / 3, 4)
    assert body["reactivations"] == {"entered": 9, "recovered": 0}
    assert body["referrals"] == {"asked": 0, "obtained": 1}
    assert body["reviews"] == {"asked": 0, "obtained": None}
    revenue = body["revenue"]
    assert (revenue["treatments"], revenue["total"], revenue["by_line"]) == (
        4,
        1650.0,
        {"injectables": 1650.0},
    )
    assert revenue["recovered_by_automation"]["total"] == 0.0
    assert set(body["by_line"]) == {"injectables", "laser_energy"}
    assert table(body["by_line"]["injectables"]) == HAND_COUNT
    assert all(s["entered"] == 0 for s in body["by_line"]["laser_energy"]["stages"])

    # One line only, and a period that holds only the last lead (P11, day 210).
    one = await funnel(api, tenant, source="history", revenue_line="laser_energy", **YEAR)
    assert all(s["entered"] == 0 for s in one["stages"])
    late = await funnel(api, tenant, source="history", **{"from": "2025-08-01", "to": "2025-09-01"})
    assert table(late)["inquiry"] == (1, 1, 0, 0)
    assert late["speed_to_lead"]["unanswered"] == 1

    # History is kept apart: the live map of this practice has nothing in it.
    live = await funnel(api, tenant, **YEAR)
    assert all(s["entered"] == 0 for s in live["stages"])


async def test_importing_the_same_export_twice_adds_nothing(api: Api) -> None:
    tenant = await api.create_practice(revenue_lines=["injectables"])
    await import_synthetic(api, tenant)
    again = await import_csv(api, tenant, "treatments", synthetic.treatments_csv())
    assert (again["imported"], again["duplicates"]) == (0, 4)
    body = await funnel(api, tenant, source="history", **YEAR)
    assert table(body) == HAND_COUNT
    # Patients with a phone or email became reachable patients (for bulk enrollment), once.
    with Session(api.engine) as session:
        patients = session.exec(
            select(Patient).where(Patient.practice_id == uuid.UUID(tenant.id))
        ).all()
    assert len(patients) == 11
    assert all(p.sms_consent for p in patients)


async def test_bad_rows_are_reported_by_line_and_field_never_by_value(api: Api) -> None:
    tenant = await api.create_practice(revenue_lines=["injectables"])
    text = (
        "patient_id,received_at,interest,phone\n"
        "X1,2025-02-03T10:00:00-05:00,botox,+12125550101\n"
        "X2,yesterday-ish,botox,+12125550102\n"
        "X3,2025-02-03T10:00:00-05:00,secret-sauce-treatment,+12125550103\n"
        "X4,2025-02-03T10:00:00-05:00,botox,555-SECRET\n"
        ",2025-02-03,botox,\n"
    )
    body = await import_csv(api, tenant, "leads", text)
    assert (body["rows"], body["imported"], body["rejected"]) == (5, 1, 4)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (3, "received_at"),
        (4, "interest"),
        (5, "phone"),
        (6, "patient_id"),
    ]
    raw = str(body)
    for value in ("yesterday-ish", "secret-sauce", "555-SECRET"):
        assert value not in raw

    # A file without a required column is refused as a whole: 422 naming the column.
    r = await api.http.post(
        "/v1/history/imports",
        params={"kind": "leads"},
        headers=tenant.headers | CSV,
        content=b"patient_id,interest\nX9,botox\n",
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "received_at"]
    for params, content, field in (
        ({"kind": "leads", "preset": "nope"}, b"a\n", "preset"),
        ({"kind": "leads"}, b"\xff\xfe\x00bad", "file"),
        ({"kind": "leads"}, b"", "file"),
        ({"kind": "leads", "map": "received_at"}, b"a\n", "map"),
    ):
        r = await api.http.post(
            "/v1/history/imports", params=params, headers=tenant.headers | CSV, content=content
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][-1] == field
    r = await api.http.post(
        "/v1/history/imports",
        params={"kind": "invoices"},
        headers=tenant.headers | CSV,
        content=b"a\n",
    )
    assert r.status_code == 422


async def test_an_emr_preset_reads_its_own_headers(api: Api) -> None:
    tenant = await api.create_practice(revenue_lines=["injectables", "laser_energy"])
    zenoti = (
        "Guest Code,Invoice Date,Item Name,Final Sale Price,Invoice No\n"
        'G-1,01/15/2025 14:30,Botox Cosmetic,"$1,200.50",INV-1\n'
        "G-2,01/16/2025,Laser Hair Removal - Legs,(50.00),INV-2\n"
    )
    body = await import_csv(api, tenant, "treatments", zenoti, preset="zenoti")
    assert (body["imported"], body["errors"]) == (2, [])
    with Session(api.engine) as session:
        rows = session.exec(
            select(HistoryRecord)
            .where(HistoryRecord.practice_id == uuid.UUID(tenant.id))
            .order_by(HistoryRecord.at)  # type: ignore[arg-type]
        ).all()
    assert [(r.revenue_line, r.service, r.amount) for r in rows] == [
        ("injectables", "botox", 1200.5),
        ("laser_energy", "laser_hair_removal", -50.0),
    ]
    # 14:30 in New York is 19:30 UTC
    assert rows[0].at == datetime(2025, 1, 15, 19, 30, tzinfo=UTC)
    # A column the preset does not know is mapped by hand.
    custom = "Client,When,What\nC-1,2025-03-01,botox\n"
    body = await import_csv(
        api,
        tenant,
        "treatments",
        custom,
        preset="boulevard",
        map=["patient_id:Client", "performed_at:When", "interest:What"],
    )
    assert body["imported"] == 1


async def test_live_journeys_feed_the_same_map(api: Api) -> None:
    """Two live leads: one no-show who is won back by the no-show recovery message and treated
    ($650), one who never books. The map counts them like the imported ones."""
    tenant = await api.create_practice(revenue_lines=["injectables"])
    started = datetime.now(UTC)
    # Email only: email has no send window, so the test does not depend on the time of day.
    won = await api.lead(
        tenant, phone=None, email="won@example.com", consent={"sms": False, "email": True}
    )
    cold = await api.lead(
        tenant, phone=None, email="cold@example.com", consent={"sms": False, "email": True}
    )
    for lead in (won, cold):
        patient_id: str = lead["patient_id"]
        await eventually(partial(api.sent, tenant, patient_id), "first reply")

    jid = won["journey_id"]
    now = datetime.now(UTC)

    async def stage_is(stage: str) -> bool:
        return (await api.journey(tenant, jid))["stage"] == stage

    async def post(**body: Any) -> None:
        r = await api.event(tenant, jid, **body)
        assert r.status_code == 202, r.text

    # Booked for an hour ago: the consult time has come, then the no-show is reported.
    await post(type="consult_booked", appointment_at=(now - timedelta(hours=2)).isoformat())
    await eventually(lambda: stage_is("consult_show"), "consult time")
    await post(type="no_show", at=(now - timedelta(hours=1)).isoformat())

    async def recovery_sent() -> bool:
        sent = await api.sent(tenant, won["patient_id"])
        return any(m["template"].startswith("no_show") for m in sent)

    await eventually(recovery_sent, "no-show recovery message")
    await post(type="consult_booked", appointment_at=(now - timedelta(minutes=1)).isoformat())
    await eventually(lambda: stage_is("consult_show"), "second consult time")
    await post(type="arrived")
    await post(type="treatment_completed", service="botox", amount=650)
    await eventually(lambda: stage_is("rebook"), "treatment recorded")
    await post(type="review_posted")  # staff (or a review platform) say she posted one

    body = await funnel(
        api,
        tenant,
        **{
            "from": (started - timedelta(minutes=1)).isoformat(),
            "to": (now + timedelta(hours=1)).isoformat(),
        },
    )
    counts = table(body)
    assert counts["inquiry"] == (2, 2, 0, 0)
    assert counts["speed_to_lead"] == (2, 1, 0, 1)  # the cold lead is still being nurtured
    assert counts["consult_booked"] == (2, 2, 0, 0)
    assert counts["consult_show"] == (2, 1, 1, 0)  # the no-show, then the attended consult
    assert counts["treatment"] == (1, 1, 0, 0)
    assert counts["rebook"] == (1, 0, 0, 1)
    assert (body["bookings"], body["no_shows"]) == (2, 1)
    assert body["reviews"] == {"asked": 0, "obtained": 1}  # live journeys measure it
    speed = body["speed_to_lead"]
    assert (speed["leads"], speed["answered"]) == (2, 2)
    assert speed["histogram"][0]["count"] == 2  # both answered within the minute
    assert speed["within_5_min_share"] == 1.0
    revenue = body["revenue"]
    assert revenue["by_line"] == {"injectables": 650.0}
    assert revenue["recovered_by_automation"] == {
        "treatments": 1,
        "total": 650.0,
        "by_cause": {
            "reactivation": 0.0,
            "no_show_recovery": 650.0,
            "quote_follow_up": 0.0,
            "recall": 0.0,
        },
    }
    # The historical map of this practice is empty: live and history are kept apart.
    history = await funnel(api, tenant, source="history")
    assert all(s["entered"] == 0 for s in history["stages"])


async def test_funnel_validates_its_query(api: Api, tenant: Tenant) -> None:
    for params, field in (
        ({"from": "2025-02-01", "to": "2025-01-01"}, "to"),
        ({"from": "soon"}, "from"),
        ({"revenue_line": "golf"}, "revenue_line"),
        ({"source": "rumour"}, "source"),
    ):
        r = await api.http.get("/v1/funnel", params=params, headers=tenant.headers)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][-1] == field


async def test_erasure_drops_imported_treatment_names(api: Api) -> None:
    tenant = await api.create_practice(revenue_lines=["injectables"])
    await import_synthetic(api, tenant)
    with Session(api.engine) as session:
        patient = session.exec(
            select(Patient)
            .where(Patient.practice_id == uuid.UUID(tenant.id))
            .where(Patient.email == "p1@example.com")
        ).one()
    r = await api.http.post(f"/v1/patients/{patient.id}/erase", headers=tenant.headers)
    assert r.status_code == 202, r.text
    with Session(api.engine) as session:
        link = session.exec(
            select(HistoryPatient).where(HistoryPatient.patient_id == patient.id)
        ).one()
        records = session.exec(
            select(HistoryRecord).where(HistoryRecord.history_patient_id == link.id)
        ).all()
        others = session.exec(
            select(HistoryRecord)
            .where(HistoryRecord.practice_id == uuid.UUID(tenant.id))
            .where(HistoryRecord.history_patient_id != link.id)
        ).all()
    assert len(records) == 4 and all(r.service is None for r in records)
    assert all(r.revenue_line == "injectables" for r in records)  # the map still counts them
    assert all(r.service == "botox" for r in others)
    # The export's patient id is stored only as a hash.
    assert link.ref != "P1" and len(link.ref) == 64
    body = await funnel(api, tenant, source="history", **YEAR)
    assert table(body) == HAND_COUNT


async def test_a_whole_export_is_not_held_to_the_json_body_limit(api: Api) -> None:
    """The API's bodies are capped small (4 KiB in tests); the import has its own limit."""
    tenant = await api.create_practice(revenue_lines=["injectables"])
    rows = ["patient_id,performed_at,interest,amount,Mobile Phone"]
    rows += [f"B{n},2025-03-{1 + n % 28:02d},botox,400,+1212556{n:04d}" for n in range(400)]
    text = "\n".join(rows) + "\n"
    assert len(text) > 3 * api.settings.max_body_bytes
    body = await import_csv(api, tenant, "treatments", text, map=["phone:Mobile Phone"])
    assert (body["imported"], body["patients_linked"]) == (400, 400)
    r = await api.http.post("/v1/inquiries", headers=tenant.headers | CSV, content=text.encode())
    assert r.status_code == 413
