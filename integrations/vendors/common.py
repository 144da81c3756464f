"""Small helpers shared by the vendor parsers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from integrations.model import PayloadError


def when(value: Any, tz: str | None = None) -> datetime | None:
    """An ISO 8601 time; a zone-less one is read in `tz` (the practice's), as vendors that send
    local times mean the location's zone."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise PayloadError("a time field is not a string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError("a time field is not ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz or "UTC"))
    return parsed


def obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{name} is missing or not an object")
    return value


def text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return None
