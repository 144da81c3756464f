"""THE test of payload encryption: a real journey, driven through the API with a patient's name,
phone and email, then its history read straight from the Temporal server by a client WITHOUT the
codec - what anyone with access to the server (or its database) sees. No PHI anywhere in it;
every payload sealed; ids, search attributes and the task queue opaque."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message as ProtoMessage
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from runtime.codec import ENCODING
from runtime.temporal_client import payload_codec
from tests.api.conftest import Api, eventually, temporal_address

FIRST, LAST = "Zebulon", "Quixote"
EMAIL = "zebulon.quixote@example.com"
PHONE = "+1 415 555 0199"
# Every form the patient's details could take once normalised, spaced or lowercased (not the
# bare last four digits: timestamps are full of digits).
PHI_NEEDLES = [
    "zebulon",
    "quixote",
    "zebulon.quixote",
    "quixote@example.com",
    "4155550199",
    "415 555 0199",
    "555 0199",
    "5550199",
]


# The keys of the SDK core's local-activity marker metadata (all ids, counters and times).
LOCAL_ACTIVITY_META = {
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}


def payloads_in(message: ProtoMessage, *, skip: type[ProtoMessage]) -> Iterator[Payload]:
    """Every Payload anywhere inside `message` (maps and repeated fields included), except those
    under a `skip` message (search attributes are indexed by the server, so never encrypted)."""
    if isinstance(message, skip):
        return
    if isinstance(message, Payload):
        yield message
        return
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            entries = value.values()
            if descriptor.message_type.fields_by_name["value"].message_type is None:
                continue
        elif descriptor.is_repeated:
            entries = value
        else:
            entries = [value]
        for entry in entries:
            yield from payloads_in(entry, skip=skip)


def assert_no_phi(what: str, text: str) -> None:
    lowered = text.lower()
    found = [n for n in PHI_NEEDLES if n in lowered]
    assert not found, f"{what} contains {found}"


async def test_temporal_never_sees_the_patient_in_the_clear(
    api: Api, temporal_dev: WorkflowEnvironment
) -> None:
    tenant = await api.create_practice()
    lead = await api.lead(
        tenant,
        first_name=FIRST,
        last_name=LAST,
        phone=PHONE,
        email=EMAIL,
        message=f"Hi, {FIRST} {LAST} here, call me on {PHONE}",
        consent={"sms": True, "email": True},
    )
    await eventually(lambda: api.sent(tenant, lead["patient_id"]), "the first reply")
    # Some events, so the history holds signals, timers, activities and upserts too.
    appointment = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    r = await api.event(
        tenant, lead["journey_id"], type="consult_booked", appointment_at=appointment
    )
    assert r.status_code == 202, r.text
    r = await api.event(tenant, lead["journey_id"], type="patient_replied", channel="sms")
    assert r.status_code == 202, r.text

    async def booked() -> bool:
        journey = await api.journey(tenant, lead["journey_id"])
        return journey["stage"] == "consult_booked"

    await eventually(booked, "the journey at consult_booked")
    workflow_id = (await api.journey(tenant, lead["journey_id"]))["workflow_id"]

    # What the server holds, read with the SDK's default converter: no codec, no key.
    raw_client = await Client.connect(
        temporal_address(temporal_dev),
        namespace=temporal_dev.client.namespace,
        data_converter=DataConverter.default,
    )
    handle = raw_client.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    assert len(history.events) > 10

    proto = History(events=history.events)
    assert_no_phi("the history (JSON)", history.to_json())
    raw = proto.SerializeToString().lower()
    for needle in PHI_NEEDLES:
        assert needle.encode() not in raw, f"the serialized history contains {needle!r}"

    # Local-activity markers carry the SDK's own bookkeeping ("data": sequence numbers, activity
    # type, times) as plain JSON beside the encrypted "result": no user data, and written by the
    # SDK core past the codec. Check that is all it is, then leave it out of the all-sealed check.
    markers = 0
    for event in proto.events:
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            assert marker.marker_name == "core_local_activity", marker.marker_name
            meta = json.loads(marker.details["data"].payloads[0].data)
            assert set(meta) <= LOCAL_ACTIVITY_META, sorted(set(meta) - LOCAL_ACTIVITY_META)
            del marker.details["data"]
            markers += 1
    assert markers, "the instant reply runs as a local activity: expected a marker"

    payloads = list(payloads_in(proto, skip=SearchAttributes))
    assert len(payloads) > 5
    unsealed = [p.metadata["encoding"] for p in payloads if p.metadata["encoding"] != ENCODING]
    assert unsealed == [], "payloads stored in the clear"

    # Not encrypted by design, so they must be opaque: ids, search attributes, task queue, memo.
    description = await handle.describe()
    assert_no_phi("the workflow id", workflow_id)
    assert_no_phi("the task queue", description.task_queue)
    assert_no_phi("the search attributes", str(description.raw_description))
    assert description.typed_search_attributes  # present, and (above) opaque

    # And the key does open them: the journey's input decodes to its ids.
    codec = payload_codec(api.settings)
    assert codec is not None
    started = history.events[0].workflow_execution_started_event_attributes
    [decoded] = await codec.decode(started.input.payloads)
    assert decoded.metadata["encoding"] == b"json/plain"
    assert tenant.id.encode() in decoded.data
