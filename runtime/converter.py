"""The payload converter every client and worker uses: the SDK's default, with dataclass field
types resolved once per class instead of once per decoded value.

Why: the SDK's JSON converter calls `typing.get_type_hints` for every dataclass *instance* it
decodes, and with postponed annotations (`from __future__ import annotations`, used throughout)
that re-evaluates every field's annotation string each time — inside the workflow sandbox, through
its import hooks. A journey decodes a whole track (a few hundred step and outcome dataclasses)
when a cycle starts and on every replay; profiling the worker under bulk enrollment put about a
fifth of its CPU in `get_type_hints`. The decoding rules are the SDK's own (`value_to_type` for
every field, init=False fields restored after construction, unknown keys ignored): only the
lookup is cached. The JSON on the wire is unchanged, so histories recorded before replay the same.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import cache
from typing import Any

from temporalio.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    hint: Any
    init: bool


@cache
def _fields_of(cls: type) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    return tuple(_Field(f.name, hints[f.name], f.init) for f in dataclasses.fields(cls))


class CachedDataclassConverter(JSONTypeConverter):
    """Decodes plain dataclass types as the SDK does, with their field types cached."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        # Only concrete dataclass classes; anything else (generic aliases, unions, primitives)
        # falls through to the SDK, which calls back here for nested dataclasses.
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return JSONTypeConverter.Unhandled
        if not isinstance(value, dict):
            return JSONTypeConverter.Unhandled  # the SDK raises its own TypeError for this
        init_values: dict[str, Any] = {}
        later: dict[str, Any] = {}
        for field in _fields_of(hint):
            raw = value.get(field.name, dataclasses.MISSING)
            if raw is dataclasses.MISSING:
                continue  # a missing required field fails in the constructor, as in the SDK
            try:
                converted = value_to_type(field.hint, raw, [self])
            except Exception as err:
                # TypeError, like the SDK: a union member that does not fit is then skipped.
                raise TypeError(
                    f"Failed converting field {field.name} on dataclass {hint}"
                ) from err
            (init_values if field.init else later)[field.name] = converted
        obj = hint(**init_values)
        for name, converted in later.items():
            object.__setattr__(obj, name, converted)  # also works on frozen dataclasses
        return obj


class JourneyPayloadConverter(CompositePayloadConverter):
    """The SDK's default encodings, the JSON one with `CachedDataclassConverter`."""

    def __init__(self) -> None:
        super().__init__(
            *(
                JSONPlainPayloadConverter(custom_type_converters=[CachedDataclassConverter()])
                if isinstance(c, JSONPlainPayloadConverter)
                else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )
