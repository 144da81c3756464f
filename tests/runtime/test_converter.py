"""The payload converter decodes exactly as the SDK's default does, only faster: same JSON on the
wire, same objects back, same errors, field types resolved once per class."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from temporalio.converter import DataConverter

from models.enums import Channel, EventType, RevenueLine, Stage
from models.journey_types import (
    InquirySignal,
    JourneyEvent,
    JourneyInput,
    JourneyMemory,
    JourneyStart,
)
from models.track_types import TrackSpec
from runtime.converter import JourneyPayloadConverter, _fields_of
from workflows.library import resolve_track

SDK = DataConverter.default.payload_converter
OURS = JourneyPayloadConverter()
AT = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


def a_continued_journey() -> JourneyInput:
    """A journey carrying everything across continue-as-new: its track, events, maps, enums."""
    track = resolve_track(RevenueLine.INJECTABLES, "botox")
    memory = JourneyMemory(
        stage=Stage.REBOOK,
        cycle=3,
        stage_entered_at=AT,
        last_treatment_at=AT,
        last_service="botox",
        suppressed_channels=[Channel.SMS],
        seen_event_ids=["e1", "e2"],
        pending_events=[JourneyEvent(EventType.TREATMENT_COMPLETED, "e3", at=AT, amount=400.0)],
        pending_inquiries=[InquirySignal("i1", AT, "form", "botox")],
        done_steps=["a", "b"],
        deferrals={"step": AT},
        anchor=AT,
        library=True,
        track=track,
        asked={"review": AT},
    )
    return JourneyInput(
        journey_id="j",
        practice_id="p",
        patient_id="q",
        revenue_line=RevenueLine.INJECTABLES,
        channels=[Channel.EMAIL],
        memory=memory,
        start=JourneyStart(Stage.REBOOK, "post_treatment", AT, "enrolled", "botox"),
    )


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (a_continued_journey(), JourneyInput),
        (resolve_track(RevenueLine.SURGICAL, "breast_augmentation"), TrackSpec),
        (resolve_track(RevenueLine.LASER_ENERGY, "laser_hair_removal"), TrackSpec),
        (JourneyMemory(), JourneyMemory),
    ],
)
def test_decodes_what_the_sdk_decodes(value: object, hint: type) -> None:
    [payload] = SDK.to_payloads([value])
    assert OURS.to_payloads([value]) == [payload]  # the wire format is the SDK's
    ours = OURS.from_payloads([payload], [hint])
    assert ours == SDK.from_payloads([payload], [hint]) == [value]


@dataclass
class Cat:
    meow: int


@dataclass
class Dog:
    bark: str


@dataclass(frozen=True)
class Kennel:
    pet: Cat | Dog | None
    pets: list[Cat | Dog] = field(default_factory=list)
    count: int = field(default=0, init=False)


def test_unions_missing_fields_and_non_init_fields_behave_like_the_sdk() -> None:
    # The first union member that fits wins; a member that does not fit is skipped.
    raw = {"pet": {"bark": "woof"}, "pets": [{"meow": 1}, {"bark": "b"}], "count": 2}
    [payload] = SDK.to_payloads([raw])
    for converter in (SDK, OURS):
        [kennel] = converter.from_payloads([payload], [Kennel])
        assert (kennel.pet, kennel.pets) == (Dog("woof"), [Cat(1), Dog("b")])
        assert kennel.count == 2  # init=False restored after construction
    [none] = SDK.to_payloads([{"pet": None}])
    assert OURS.from_payloads([none], [Kennel])[0].pet is None
    # A required field missing, or a wrong type, is an error as with the SDK.
    bads: list[dict[str, object]] = [{"pets": []}, {"pet": {"meow": "not a number"}}, {"pet": 5}]
    for bad in bads:
        [payload] = SDK.to_payloads([bad])
        with pytest.raises(Exception):  # noqa: B017 - the SDK's own error types, whichever
            SDK.from_payloads([payload], [Kennel])
        with pytest.raises(Exception):  # noqa: B017
            OURS.from_payloads([payload], [Kennel])


def test_field_types_are_resolved_once_per_class() -> None:
    _fields_of.cache_clear()
    track = resolve_track(RevenueLine.INJECTABLES, "botox")
    [payload] = OURS.to_payloads([track])
    OURS.from_payloads([payload], [TrackSpec])
    info = _fields_of.cache_info()
    classes = info.currsize
    assert classes <= 6  # TrackSpec, SequenceSpec, StepSpec, OutcomeSpec, ...
    # Every nested dataclass decoded, each class's hints looked up once.
    decoded = instances(track)
    assert decoded > 50
    assert info.misses == classes
    assert info.hits == decoded - classes


def instances(value: object) -> int:
    """Dataclass instances in a value, nested ones included."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return 1 + sum(instances(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(instances(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(instances(v) for v in value)
    return 0
