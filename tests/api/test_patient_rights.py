"""Patient rights end to end (dev server + in-process worker, SQLite and PostgreSQL): export
everything about a patient; erasure ends every journey as `erased`, scrubs PHI from every table,
keeps the ledger's rows, is idempotent, and works while Temporal is down (persist-then-signal)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.journey_starter import load_received_plans
from tests.api.conftest import Api, StackFactory, Tenant, eventually, sqlite_url


def _letters() -> str:
    return "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:8])


def _identity() -> dict[str, Any]:
    # Unique per test, so the raw scan is not fooled by another test's (unerased) patient.
    n = uuid.uuid4().int % 10_000
    first, last = f"Zeb{_letters()}", f"Quix{_letters()}"
    return {
        "first_name": first,
        "last_name": last,
        "phone": f"(212) 555-{n:04d}",
        "email": f"zq{uuid.uuid4().hex[:8]}@example.com",
        "message": f"Hi, {first} here, call me about lips",
    }


def _e164(phone: str) -> str:
    return "+1" + "".join(ch for ch in phone if ch.isdigit())


async def _replied(api: Api, tenant: Tenant, patient_id: str) -> list[dict[str, Any]] | None:
    sent = await api.sent(tenant, patient_id)
    return sent or None


def _phi_in_database(engine: Engine, needles: list[str]) -> list[str]:
    """Every text-ish column of every table, scanned for any needle (case-insensitive)."""
    found: list[str] = []
    inspector = sa.inspect(engine)
    with engine.connect() as conn:
        for table in inspector.get_table_names():
            if table == "alembic_version":
                continue
            columns = [c["name"] for c in inspector.get_columns(table)]
            quoted = ", ".join(f'"{c}"' for c in columns)
            for row in conn.execute(sa.text(f'SELECT {quoted} FROM "{table}"')):
                for column, value in zip(columns, row, strict=True):
                    text = str(value).lower() if value is not None else ""
                    found += [f"{table}.{column}" for n in needles if n.lower() in text]
    return found


async def test_export_has_everything_about_the_patient(any_api: Api) -> None:
    api = any_api
    tenant = await api.create_practice()
    who = _identity()
    lead = await api.lead(tenant, **who)
    await eventually(lambda: _replied(api, tenant, lead["patient_id"]), "the instant reply")

    async def history() -> list[Any]:
        # Stage changes are written after the instant reply (at the journey's next wait).
        stages: list[Any] = (await api.journey(tenant, lead["journey_id"]))["stage_history"]
        return stages

    await eventually(history, "the journey's stage history")
    r = await api.http.get(f"/v1/patients/{lead['patient_id']}/export", headers=tenant.headers)
    assert r.status_code == 200, r.text
    export = r.json()
    assert (
        export["patient"]["first_name"] == who["first_name"]
        and export["patient"]["erased_at"] is None
    )
    assert export["patient"]["email"] == who["email"]
    assert [i["message"] for i in export["inquiries"]] == [who["message"]]
    assert [j["id"] for j in export["journeys"]] == [lead["journey_id"]]
    assert export["journeys"][0]["stage_history"], "stage history included"
    assert any(m["body"] and who["first_name"] in m["body"] for m in export["messages"])
    assert set(export) == {
        "patient", "inquiries", "consent_records", "journeys", "journey_events", "messages",
        "staff_tasks", "emr_links", "emr_appointments",
    }  # fmt: skip
    assert [(c["channel"], c["granted"]) for c in export["consent_records"]] == [("sms", True)]


async def test_erasure_ends_journeys_and_leaves_no_phi(any_api: Api) -> None:
    api = any_api
    tenant = await api.create_practice()
    who = _identity()
    lead = await api.lead(tenant, **who)
    second = await api.lead(tenant, **(who | {"interest": "laser_hair_removal"}))
    assert second["patient_id"] == lead["patient_id"]

    async def both_replied() -> bool:
        # Both journeys' instant replies, or the ledger may still grow after it is read below.
        return len(await api.sent(tenant, lead["patient_id"])) >= 2

    await eventually(both_replied, "the instant replies of both journeys")
    r = await api.event(
        tenant, lead["journey_id"], type="treatment_completed", service="lip filler", amount=650
    )
    assert r.status_code == 202, r.text
    ledger_before = await api.messages(tenant, lead["patient_id"])

    r = await api.http.post(f"/v1/patients/{lead['patient_id']}/erase", headers=tenant.headers)
    assert r.status_code == 202, r.text
    result = r.json()
    assert set(result["journey_ids"]) == {lead["journey_id"], second["journey_id"]}

    async def all_erased() -> bool:
        for journey_id in result["journey_ids"]:
            journey = await api.journey(tenant, journey_id)
            if journey["status"] != "erased":
                return False
        return True

    await eventually(all_erased, "every journey erased")

    again = await api.http.post(f"/v1/patients/{lead['patient_id']}/erase", headers=tenant.headers)
    assert again.status_code == 202 and again.json() == result  # idempotent

    messages = await api.messages(tenant, lead["patient_id"])
    assert [m["id"] for m in messages] == [m["id"] for m in ledger_before]  # ledger rows kept
    assert all(m["body"] is None for m in messages)
    assert all(m["template"] and m["status"] for m in messages)

    export = (
        await api.http.get(f"/v1/patients/{lead['patient_id']}/export", headers=tenant.headers)
    ).json()
    patient = export["patient"]
    assert patient["erased_at"] is not None
    assert [patient[k] for k in ("first_name", "last_name", "phone", "email")] == [None] * 4
    assert all(i["message"] is None for i in export["inquiries"])
    # Treatments are PHI: the revenue line stays (the funnel), the service names go.
    assert [(i["interest"], i["service"]) for i in export["inquiries"]] == [
        ("injectables", None),
        ("laser_energy", None),
    ]
    assert export["journey_events"] and all(
        e["payload"].get("service") is None for e in export["journey_events"]
    )
    needles = [who["first_name"], who["last_name"], who["email"], _e164(who["phone"]), who["phone"]]
    assert not any(n.lower() in r_.lower() for n in needles for r_ in [str(export)])
    assert _phi_in_database(api.engine, needles) == []

    # Audit: one erase row per call, ids only.
    audit = await api.http.get(
        "/v1/audit",
        headers=tenant.headers,
        params={"action": "patient.erase", "resource_id": lead["patient_id"]},
    )
    assert audit.status_code == 200 and len(audit.json()["items"]) == 2


async def test_erasure_is_committed_while_temporal_is_down(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two apps on one database and one task queue: the first has no Temporal (dead port), the
    second (with the worker) delivers the persisted erase event through its relay."""
    url = sqlite_url(tmp_path_factory.mktemp("erase-down"))
    queue = f"erase-{uuid.uuid4()}"
    async with api_stack(url, task_queue=queue) as live:
        tenant = await live.create_practice()
        lead = await live.lead(tenant, **_identity())
        await eventually(lambda: _replied(live, tenant, lead["patient_id"]), "the instant reply")
        async with api_stack(url, temporal="127.0.0.1:1", task_queue=queue, worker=False) as down:
            r = await down.http.post(
                f"/v1/patients/{lead['patient_id']}/erase", headers=tenant.headers
            )
            assert r.status_code == 202, r.text
            patient = (
                await down.http.get(
                    f"/v1/patients/{lead['patient_id']}/export", headers=tenant.headers
                )
            ).json()["patient"]
            assert patient["first_name"] is None and patient["erased_at"] is not None

        async def erased() -> bool:
            return (await live.journey(tenant, lead["journey_id"]))["status"] == "erased"

        await eventually(erased, "the relay delivers the erase event")


async def test_a_journey_never_started_is_erased_without_temporal(
    api_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Temporal down from the start: the journey row is still pending when the patient is
    erased. It ends as erased at once, and the relay never starts it later."""
    url = sqlite_url(tmp_path_factory.mktemp("erase-unstarted"))
    queue = f"erase-{uuid.uuid4()}"
    async with api_stack(url, temporal="127.0.0.1:1", task_queue=queue, worker=False) as down:
        tenant = await down.create_practice()
        lead = await down.lead(tenant, **_identity())
        assert lead["status"] == "received"
        r = await down.http.post(f"/v1/patients/{lead['patient_id']}/erase", headers=tenant.headers)
        assert r.status_code == 202, r.text
        journey = await down.journey(tenant, lead["journey_id"])
        assert journey["status"] == "erased"
    async with api_stack(url, task_queue=queue) as live:
        future = datetime.now(UTC) + timedelta(hours=1)  # past the relay's grace period
        plans = load_received_plans(live.engine, future, limit=100)
        assert str(lead["inquiry_id"]) not in {str(p.inquiry_id) for p in plans}
        assert (await live.app.state.relay.run_once()).started == 0
        journey = await live.journey(tenant, lead["journey_id"])
        assert journey["status"] == "erased"
