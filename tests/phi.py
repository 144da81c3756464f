"""Checks that a Temporal history, as the server stores it, holds no PHI and no clear payload.
Shared by the API-level and the time-skipping encryption tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from google.protobuf.message import Message as ProtoMessage
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.converter import DataConverter

from runtime.codec import ENCODING
from workflows.journey import PATCH_TRACK_LIBRARY

# The patient of the encryption tests, and every form their details could take once normalised,
# spaced or lowercased (not the bare last four digits: timestamps are full of digits).
FIRST, LAST = "Zebulon", "Quixote"
EMAIL = "zebulon.quixote@example.com"
PHONE = "+1 415 555 0199"
PHI_NEEDLES = [
    "zebulon",
    "quixote",
    "zebulon.quixote",
    "quixote@example.com",
    "4155550199",
    "415 555 0199",
    "555 0199",
    # Not the bare 7 digits "5550199": a timestamp's nanoseconds can hold them by chance.
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


async def raw_client(like: Client) -> Client:
    """A client to the same server and namespace as `like`, with the SDK's default converter:
    no codec, no key - what anyone with access to the server sees."""
    return await Client.connect(
        like.service_client.config.target_host,
        namespace=like.namespace,
        data_converter=DataConverter.default,
    )


def payloads_in(message: ProtoMessage, *, skip: type[ProtoMessage]) -> Iterator[Payload]:
    """Every Payload anywhere inside `message` (maps and repeated fields included), except those
    under a `skip` message."""
    if isinstance(message, skip):
        return
    if isinstance(message, Payload):
        yield message
        return
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            if descriptor.message_type.fields_by_name["value"].message_type is None:
                continue
            entries = list(value.values())
        elif descriptor.is_repeated:
            entries = list(value)
        else:
            entries = [value]
        for entry in entries:
            yield from payloads_in(entry, skip=skip)


def assert_no_phi(what: str, text: str) -> None:
    lowered = text.lower()
    found = [n for n in PHI_NEEDLES if n in lowered]
    assert not found, f"{what} contains {found}"


def assert_history_sealed(events: Iterable[HistoryEvent], json_text: str) -> int:
    """No PHI in the history's bytes or JSON; every payload `binary/encrypted` except search
    attributes (indexed by the server, opaque ids by rule) and the SDK's local-activity marker
    bookkeeping (checked to be only that). Returns the number of sealed payloads."""
    proto = History()
    proto.events.extend(events)
    assert_no_phi("the history (JSON)", json_text)
    raw = proto.SerializeToString().lower()
    for needle in PHI_NEEDLES:
        assert needle.encode() not in raw, f"the serialized history contains {needle!r}"

    # Local-activity markers carry the SDK core's bookkeeping ("data": sequence numbers, activity
    # type, times) as plain JSON beside the encrypted "result": written by the core past the
    # codec, and no user data. Check that is all it is, then leave it out of the check below.
    for event in proto.events:
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_patch":
                # A `workflow.patched` marker: the patch id (a constant of our code) and a flag.
                for key in list(marker.details):
                    data = json.loads(marker.details[key].payloads[0].data)
                    assert data == {"id": PATCH_TRACK_LIBRARY, "deprecated": False}, data
                    del marker.details[key]
                continue
            assert marker.marker_name == "core_local_activity", marker.marker_name
            meta = json.loads(marker.details["data"].payloads[0].data)
            assert set(meta) <= LOCAL_ACTIVITY_META, sorted(set(meta) - LOCAL_ACTIVITY_META)
            del marker.details["data"]

    payloads = list(payloads_in(proto, skip=SearchAttributes))
    unsealed = [p.metadata["encoding"] for p in payloads if p.metadata["encoding"] != ENCODING]
    assert unsealed == [], "payloads stored in the clear"
    return len(payloads)


async def assert_run_sealed(handle: WorkflowHandle) -> int:
    """`assert_history_sealed` for one run, plus its id, task queue and search attributes."""
    history = await handle.fetch_history()
    sealed = assert_history_sealed(history.events, history.to_json())
    description = await handle.describe()
    assert_no_phi("the workflow id", handle.id)
    assert_no_phi("the task queue", description.task_queue)
    assert_no_phi("the description (search attributes, memo)", str(description.raw_description))
    return sealed
