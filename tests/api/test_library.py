"""GET /v1/library, a practice's edits (validated when saved), and the track preview."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, Tenant, eventually

START = "2027-01-04T09:00:00"  # a Monday, practice-local
TOX_PATIENT = "booked@3>10,arrived@10T13:55,treated@10T14:30:botox"
STOP = " Reply STOP to opt out."


async def library(api: Api, tenant: Tenant) -> dict[str, Any]:
    r = await api.http.get("/v1/library", headers=tenant.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def preview(api: Api, tenant: Tenant, track: str, **params: Any) -> dict[str, Any]:
    r = await api.http.get(
        f"/v1/tracks/{track}/preview", headers=tenant.headers, params={"start": START, **params}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def messages(body: dict[str, Any]) -> list[tuple[int, str]]:
    return [(e["day"], e["what"]) for e in body["timeline"] if e["kind"] == "message"]


def field_of(r: Any) -> list[Any]:
    assert r.status_code == 422, r.text
    return list(r.json()["detail"][0]["loc"])


async def test_the_library_a_practice_gets_on_day_one(api: Api, tenant: Tenant) -> None:
    body = await library(api, tenant)
    counts = body["counts"]
    assert counts["sequences"] == len(body["sequences"]) >= 100
    assert counts["templates"] == len(body["templates"]) >= 75
    assert counts["tracks"] == len(body["tracks"]) == 19
    templates = {t["id"] for t in body["templates"]}
    for seq in body["sequences"]:
        assert seq["steps"], seq["id"]
        for step in seq["steps"]:
            assert step["template"] is None or step["template"] in templates
    tox = next(s for s in body["services"] if s["key"] == "botox")
    assert (tox["recall_days"], tox["min_interval_days"], tox["track"]) == (
        90,
        90,
        "injectables.tox",
    )
    lines = {t["line"] for t in body["tracks"]}
    assert lines == {"surgical", "injectables", "laser_energy", "body_contouring", "dermatology"}
    assert body["practice"]["revision"] == 0


async def test_preview_of_a_tox_patient(api: Api, tenant: Tenant) -> None:
    body = await preview(api, tenant, "injectables.tox", events=TOX_PATIENT, horizon_days=200)
    assert (body["track"], body["version"], body["service"]) == ("injectables.tox", "2.0", "tox")
    sent = messages(body)
    assert sent[0] == (0, "inquiry_reply")
    recalls = [(day, what) for day, what in sent if what.startswith("recall_")]
    # Treated on day 10: heads-up two weeks before day 90, never a recall sooner.
    assert recalls[:2] == [(86, "recall_upcoming_tox"), (100, "recall_due_tox")]
    assert body["runs"] == 2  # the treatment starts a new cycle: continue-as-new


async def test_a_service_edit_moves_the_recall(api: Api, tenant: Tenant) -> None:
    r = await api.http.put(
        "/v1/library/services/botox",
        headers=tenant.headers,
        json={"recall_days": 120, "min_interval_days": 100},
    )
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 1
    assert r.json()["services"]["botox"] == {"recall_days": 120, "min_interval_days": 100}
    body = await preview(api, tenant, "injectables.tox", events=TOX_PATIENT, horizon_days=200)
    assert body["version"] == "2.1"
    assert (130, "recall_due_tox") in messages(body)
    r = await api.http.delete("/v1/library/services/botox", headers=tenant.headers)
    assert r.json()["revision"] == 2 and r.json()["services"] == {}


async def test_a_track_edit_changes_the_preview(api: Api, tenant: Tenant) -> None:
    r = await api.http.put(
        "/v1/library/tracks/injectables.tox",
        headers=tenant.headers,
        json={
            "disabled": ["post_treatment.recall_upcoming"],
            "offsets_minutes": {"review_referral.review_ask": 21 * 24 * 60},
            "templates": {"new_lead.nurture_d1": "nurture_aesthetic_2"},
        },
    )
    assert r.status_code == 200, r.text
    sent = messages(await preview(api, tenant, "injectables.tox", events=TOX_PATIENT))
    names = [what for _, what in sent]
    assert "recall_upcoming_tox" not in names
    assert (31, "review_ask") in sent
    assert (1, "nurture_aesthetic_2") in sent and "nurture_tox" not in names


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("services/botox", {"recall_days": 60}, "recall_days"),  # sooner than allowed
        ("services/botox", {"series_sessions": 3}, "session_interval_days"),
        ("services/botox", {"recall_days": 0}, "recall_days"),
        ("services/botox", {"colour": "red"}, "colour"),
        ("tracks/injectables.tox", {"disabled": ["post_treatment.nope"]}, "disabled"),
        ("tracks/injectables.tox", {"disabled": ["new_lead.reply"]}, "disabled"),
        (
            "tracks/injectables.tox",
            {"offsets_minutes": {"consult_reminders.reminder_1d": 60}},
            "offsets_minutes",
        ),
        (
            "tracks/injectables.tox",
            {"templates": {"new_lead.nurture_d1": "no_such_template"}},
            "templates",
        ),
        ("templates/recall_last", {"sms": "Hi {{ last_name }}" + STOP, "subject": "x"}, "sms"),
        ("templates/recall_last", {"sms": "Hi {{ first_name " + STOP, "subject": "x"}, "sms"),
        ("templates/recall_last", {"sms": "Hi {{ first_name }}, book now", "subject": "x"}, "sms"),
        (
            "templates/recall_last",
            {"sms": "{{ practice.__class__ }}" + STOP, "subject": "x"},
            "sms",
        ),
        ("templates/recall_last", {"sms": "Hi" + STOP, "subject": "{{ nope }}"}, "subject"),
        ("templates/recall_last", {"sms": "{{ first_name * 999 }}" + STOP, "subject": "x"}, "sms"),
    ],
)
async def test_a_broken_edit_is_refused_when_saved(
    api: Api, tenant: Tenant, path: str, body: dict[str, Any], field: str
) -> None:
    r = await api.http.put(f"/v1/library/{path}", headers=tenant.headers, json=body)
    assert field_of(r)[-1] == field
    assert (await library(api, tenant))["practice"]["revision"] == 0  # nothing saved


async def test_unknown_names_answer_404(api: Api, tenant: Tenant) -> None:
    for method, path, body in (
        ("PUT", "/v1/library/services/nope", {"recall_days": 30}),
        ("PUT", "/v1/library/tracks/injectables.nope", {}),
        ("PUT", "/v1/library/templates/nope", {"sms": "x", "subject": "y"}),
        ("GET", "/v1/tracks/nope/preview", None),
        ("GET", "/v1/tracks/surgical.tox/preview", None),  # a family of another line
    ):
        r = await api.http.request(method, path, headers=tenant.headers, json=body)
        assert r.status_code == 404, (path, r.text)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"events": "booked@3"}, "events"),  # no appointment
        ({"events": "arrived@2>4"}, "events"),
        ({"events": "teleported@2"}, "events"),
        ({"events": "treated@2:unobtainium"}, "events"),
        ({"events": "treated@2T25:00"}, "events"),
        ({"service": "rhinoplasty"}, "service"),  # not a tox service
        ({"horizon_days": 0}, "horizon_days"),
    ],
)
async def test_a_bad_scenario_is_a_422(
    api: Api, tenant: Tenant, params: dict[str, Any], field: str
) -> None:
    r = await api.http.get(
        "/v1/tracks/injectables.tox/preview", headers=tenant.headers, params=params
    )
    assert field_of(r) == ["query", field]


async def test_a_template_edit_is_what_the_patient_gets(api: Api, tenant: Tenant) -> None:
    text = "Hello {{ first_name }}! {{ practice }} got your note about {{ treatment }}." + STOP
    r = await api.http.put(
        "/v1/library/templates/inquiry_reply",
        headers=tenant.headers,
        json={"sms": text, "subject": "Hello from {{ practice }}"},
    )
    assert r.status_code == 200, r.text
    lead = await api.lead(tenant)
    [reply] = await eventually(lambda: api.sent(tenant, lead["patient_id"]), "the reply")
    assert reply["body"] == (
        "Hello Ada! Glow Aesthetics got your note about your treatment." + STOP
    )

    # Treatment names only when the practice opts in (PHI-minimal by default).
    r = await api.http.put(
        "/v1/library/settings", headers=tenant.headers, json={"show_treatment_names": True}
    )
    assert r.json()["show_treatment_names"] is True
    other = await api.lead(tenant, phone="(212) 555-0199", email="bo@example.com")
    [reply] = await eventually(lambda: api.sent(tenant, other["patient_id"]), "the reply")
    assert "note about Botox." in reply["body"]
