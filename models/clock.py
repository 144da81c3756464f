"""Time formatting shared by the workflow and the activities.

Imported by the workflow through the sandbox passthrough: the sandbox proxies `ZoneInfo`
instances, which `datetime.astimezone` refuses, so zone conversion lives here."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def format_local(at: datetime, timezone: str, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    return at.astimezone(ZoneInfo(timezone)).strftime(fmt)
