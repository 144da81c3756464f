"""What a patient may name as their interest: a revenue line, or a service of the catalog
(workflows/catalog.py) by key or alias. The API needs the line to pick the journey."""

from __future__ import annotations

from models.enums import RevenueLine
from workflows.catalog import find_service

_LINES = frozenset(line.value for line in RevenueLine)


def normalize_interest(value: str) -> str:
    """`Laser hair-removal` and `laser_hair_removal` are the same interest."""
    return "_".join(value.strip().lower().replace("-", " ").split())


def resolve_interest(value: str) -> tuple[RevenueLine, str | None] | None:
    """(line, service key) for a revenue line or a known service; None when unknown."""
    key = normalize_interest(value)
    if key in _LINES:
        return RevenueLine(key), None
    service = find_service(key)
    return (service.line, service.key) if service is not None else None
