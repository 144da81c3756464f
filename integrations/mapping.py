"""Per-integration mapping from a vendor's services to our catalog (workflows/catalog.py).

`Integration.service_map` maps a vendor's service id or name to a catalog service key or alias
(`botox`, `dermal_filler`) or to a revenue line (`surgical`): the practice says once what its
"Tox - 20 units" is. Unmapped names still resolve when they are catalog names themselves
("Botox", "Laser hair removal"); otherwise the integration's default line applies, if any."""

from __future__ import annotations

from typing import Any

from api.services import normalize_interest, resolve_interest
from models.enums import RevenueLine


def validate_target(value: str) -> bool:
    return resolve_interest(value) is not None


def resolve(
    services: list[str], service_map: dict[str, Any], default_line: str | None
) -> tuple[RevenueLine | None, str | None]:
    """(line, catalog service key) for the first of `services` we can place."""
    normalized = {normalize_interest(k): v for k, v in service_map.items()}
    for name in services:
        target = service_map.get(name) or normalized.get(normalize_interest(name))
        for candidate in (target, name):
            if isinstance(candidate, str):
                resolved = resolve_interest(candidate)
                if resolved is not None:
                    return resolved
    if default_line:
        return RevenueLine(default_line), None
    return None, None
