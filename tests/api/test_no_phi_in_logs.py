"""No PHI where encryption cannot reach: log lines and error messages. A patient with a
distinctive name, phone and email goes through intake, bad input, events and the journey's first
sends, with every Python log record captured at DEBUG (API, relay, worker, activities, SDK)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta

import pytest

from runtime.logs import JsonFormatter
from tests.api.conftest import Api, eventually
from tests.phi import EMAIL, FIRST, LAST, PHONE, assert_no_phi

BAD_INPUTS = [
    {"phone": f"{PHONE} ext {FIRST}"},  # not a phone number
    {"email": EMAIL.replace("@", "@@")},  # not an email
    {"interest": f"{LAST}-lift"},  # not a service or line
    {"timezone": f"{FIRST}/{LAST}"},  # not a time zone
    {"first_name": FIRST * 40},  # too long
    {"nickname": FIRST},  # unknown field
]


async def test_no_phi_in_log_lines_or_error_messages(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = await api.create_practice()
    patient = {
        "first_name": FIRST,
        "last_name": LAST,
        "phone": PHONE,
        "email": EMAIL,
        "message": f"{FIRST} {LAST} here, {PHONE}, {EMAIL}",
        "consent": {"sms": True, "email": True},
    }
    for bad in BAD_INPUTS:
        r = await api.inquiry(tenant, **(patient | bad))
        assert r.status_code == 422, r.text
        assert_no_phi(f"the 422 answer to {sorted(bad)}", r.text)

    lead = await api.lead(tenant, **patient, external_id="phi-1")
    r = await api.inquiry(tenant, **(patient | {"message": "changed"}), external_id="phi-1")
    assert r.status_code == 409
    assert_no_phi("the 409 answer", r.text)
    await eventually(lambda: api.sent(tenant, lead["patient_id"]), "the first reply")
    appointment = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    for body in (
        {"type": "consult_booked", "appointment_at": appointment},
        {"type": "patient_replied", "channel": "sms"},
        {"type": "consult_booked"},  # 422: no appointment time
    ):
        r = await api.event(tenant, lead["journey_id"], **body)
        assert_no_phi(f"the answer to {body['type']}", r.text)

    records = [r for r in caplog.records if r.levelno >= logging.DEBUG]
    assert records, "nothing was logged: the check would be vacuous"
    lines = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)
    assert_no_phi("the log lines", lines)

    # LOG_FORMAT=json: the same records as the JSON lines a log pipeline would get, exceptions
    # included (their type and frames, never their message).
    formatter = JsonFormatter()
    json_lines = [formatter.format(r) for r in records]
    assert all(json.loads(line)["logger"] for line in json_lines)
    assert_no_phi("the JSON log lines", "\n".join(json_lines))


def test_json_logs_carry_no_exception_message() -> None:
    """A database error's message holds the statement's parameters: the JSON line names the
    exception's type and frames only."""
    try:
        raise ValueError(f"INSERT ... parameters ({FIRST!r}, {EMAIL!r}, {PHONE!r})")
    except ValueError:
        record = logging.LogRecord(
            "api", logging.ERROR, __file__, 1, "intake failed", None, sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["exc_type"] == "ValueError" and "test_no_phi_in_logs.py" in line["exc_frames"]
    assert line["message"] == "intake failed" and line["level"] == "ERROR"
    assert_no_phi("a JSON line with an exception", json.dumps(line))
