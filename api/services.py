"""The built-in service map: what a patient may name as their interest, and the revenue line it
belongs to. A per-practice catalog may override it later (DESIGN §2); the API needs the line."""

from __future__ import annotations

from models.enums import RevenueLine

SERVICES: dict[str, RevenueLine] = {
    # injectables
    "botox": RevenueLine.INJECTABLES,
    "tox": RevenueLine.INJECTABLES,
    "dysport": RevenueLine.INJECTABLES,
    "xeomin": RevenueLine.INJECTABLES,
    "daxxify": RevenueLine.INJECTABLES,
    "filler": RevenueLine.INJECTABLES,
    "lip_filler": RevenueLine.INJECTABLES,
    "kybella": RevenueLine.INJECTABLES,
    # laser / energy
    "laser_hair_removal": RevenueLine.LASER_ENERGY,
    "ipl": RevenueLine.LASER_ENERGY,
    "microneedling": RevenueLine.LASER_ENERGY,
    "laser_resurfacing": RevenueLine.LASER_ENERGY,
    "morpheus8": RevenueLine.LASER_ENERGY,
    # body contouring
    "coolsculpting": RevenueLine.BODY_CONTOURING,
    "emsculpt": RevenueLine.BODY_CONTOURING,
    # surgical
    "breast_augmentation": RevenueLine.SURGICAL,
    "rhinoplasty": RevenueLine.SURGICAL,
    "facelift": RevenueLine.SURGICAL,
    "tummy_tuck": RevenueLine.SURGICAL,
    "liposuction": RevenueLine.SURGICAL,
    "blepharoplasty": RevenueLine.SURGICAL,
}


_LINES = frozenset(line.value for line in RevenueLine)


def normalize_interest(value: str) -> str:
    """`Laser hair-removal` and `laser_hair_removal` are the same interest."""
    return "_".join(value.strip().lower().replace("-", " ").split())


def resolve_interest(value: str) -> tuple[RevenueLine, str | None] | None:
    """(line, service) for a revenue line or a known service name; None when unknown."""
    key = normalize_interest(value)
    if key in _LINES:
        return RevenueLine(key), None
    line = SERVICES.get(key)
    return (line, key) if line is not None else None
