"""The service catalog: every service a practice sells, its revenue line, the track family that
follows it up, and its own rhythm (DESIGN §2). Pure data, imported by the workflow and the API.

A practice overrides the rhythm fields (`OVERRIDABLE`) per service through the API; the resolved
values are frozen into a journey's track when its cycle starts (workflows/library.py)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from models.enums import RevenueLine

CATALOG_VERSION = 1


@dataclass(frozen=True)
class Service:
    """One service. Days are whole days from the treatment.

    A service with `series_sessions > 1` is a series (laser) or package (body contouring): the
    follow-up books the next session every `session_interval_days`, then offers maintenance
    `maintenance_days` after the last one. Otherwise it recurs: the recall is due after
    `recall_days`, never sooner than `min_interval_days` (tox: ~90 days, never sooner)."""

    key: str
    name: str  # shown to patients only when the practice opts in to treatment names
    line: RevenueLine
    family: str
    recall_days: int | None = None
    min_interval_days: int | None = None
    series_sessions: int = 1
    session_interval_days: int | None = None
    results_check_days: int | None = None  # after the last session of a package
    maintenance_days: int | None = None  # after the series/package is complete
    aliases: tuple[str, ...] = ()

    @property
    def is_series(self) -> bool:
        return self.series_sessions > 1


OVERRIDABLE = (
    "recall_days",
    "min_interval_days",
    "series_sessions",
    "session_interval_days",
    "results_check_days",
    "maintenance_days",
)

# Families: one track each (workflows/library.py). The first of each line is its default, used
# until the patient names a service.
FAMILIES: dict[RevenueLine, tuple[str, ...]] = {
    RevenueLine.SURGICAL: ("surgery", "breast", "body", "face", "nose"),
    RevenueLine.INJECTABLES: ("tox", "filler", "biostimulator", "fat_dissolving"),
    RevenueLine.LASER_ENERGY: ("laser_hair", "ipl", "resurfacing", "microneedling"),
    RevenueLine.BODY_CONTOURING: ("cryolipolysis", "muscle_sculpting", "skin_tightening"),
    RevenueLine.DERMATOLOGY: ("skin_check", "acne", "chronic_care"),
}
LINE_OF_FAMILY = {family: line for line, fams in FAMILIES.items() for family in fams}


def _s(key: str, name: str, family: str, **rhythm: int | tuple[str, ...]) -> Service:
    return Service(key, name, LINE_OF_FAMILY[family], family, **rhythm)  # type: ignore[arg-type]


SERVICES: dict[str, Service] = {
    s.key: s
    for s in (
        # injectables: tox every ~90 days and never sooner; filler 6-12 months
        _s(
            "tox",
            "your neuromodulator",
            "tox",
            recall_days=90,
            min_interval_days=90,
            aliases=("neurotoxin", "wrinkle_relaxer"),
        ),
        _s("botox", "Botox", "tox", recall_days=90, min_interval_days=90),
        _s("dysport", "Dysport", "tox", recall_days=90, min_interval_days=90),
        _s("xeomin", "Xeomin", "tox", recall_days=90, min_interval_days=90),
        _s("jeuveau", "Jeuveau", "tox", recall_days=90, min_interval_days=90),
        _s("daxxify", "Daxxify", "tox", recall_days=120, min_interval_days=120),
        _s(
            "filler",
            "dermal filler",
            "filler",
            recall_days=270,
            min_interval_days=180,
            aliases=("dermal_filler",),
        ),
        _s("lip_filler", "lip filler", "filler", recall_days=180, min_interval_days=150),
        _s("cheek_filler", "cheek filler", "filler", recall_days=365, min_interval_days=270),
        _s(
            "under_eye_filler", "under-eye filler", "filler", recall_days=270, min_interval_days=180
        ),
        _s(
            "sculptra",
            "Sculptra",
            "biostimulator",
            series_sessions=3,
            session_interval_days=42,
            maintenance_days=540,
        ),
        _s("radiesse", "Radiesse", "biostimulator", recall_days=365, min_interval_days=300),
        _s(
            "kybella",
            "Kybella",
            "fat_dissolving",
            series_sessions=3,
            session_interval_days=42,
            maintenance_days=365,
        ),
        # laser and energy: series; hair removal face 4-6 weeks, body 6-8 weeks, 6-8 sessions
        _s(
            "laser_hair_removal",
            "laser hair removal",
            "laser_hair",
            series_sessions=8,
            session_interval_days=42,
            maintenance_days=365,
        ),
        _s(
            "laser_hair_face",
            "laser hair removal",
            "laser_hair",
            series_sessions=6,
            session_interval_days=35,
            maintenance_days=365,
        ),
        _s(
            "laser_hair_body",
            "laser hair removal",
            "laser_hair",
            series_sessions=8,
            session_interval_days=49,
            maintenance_days=365,
        ),
        _s(
            "ipl",
            "IPL photofacial",
            "ipl",
            series_sessions=3,
            session_interval_days=28,
            maintenance_days=365,
            aliases=("photofacial", "bbl_photofacial"),
        ),
        _s(
            "laser_resurfacing",
            "laser resurfacing",
            "resurfacing",
            series_sessions=3,
            session_interval_days=42,
            maintenance_days=365,
            aliases=("fraxel",),
        ),
        _s("co2_laser", "CO2 resurfacing", "resurfacing", recall_days=365, min_interval_days=270),
        _s(
            "microneedling",
            "microneedling",
            "microneedling",
            series_sessions=3,
            session_interval_days=35,
            maintenance_days=180,
        ),
        _s(
            "morpheus8",
            "Morpheus8",
            "microneedling",
            series_sessions=3,
            session_interval_days=35,
            maintenance_days=365,
            aliases=("rf_microneedling",),
        ),
        # body contouring: packages, results check at ~12 weeks, maintenance months later
        _s(
            "coolsculpting",
            "CoolSculpting",
            "cryolipolysis",
            series_sessions=2,
            session_interval_days=56,
            results_check_days=84,
            maintenance_days=180,
            aliases=("cryolipolysis",),
        ),
        _s(
            "emsculpt",
            "Emsculpt",
            "muscle_sculpting",
            series_sessions=4,
            session_interval_days=4,
            results_check_days=84,
            maintenance_days=90,
        ),
        _s(
            "body_tightening",
            "RF skin tightening",
            "skin_tightening",
            series_sessions=4,
            session_interval_days=7,
            results_check_days=84,
            maintenance_days=365,
            aliases=("rf_body_tightening",),
        ),
        # surgical families: post-op cadence, then maintenance cross-sell
        _s("surgical_consult", "your procedure", "surgery", aliases=("plastic_surgery",)),
        _s("breast_augmentation", "breast augmentation", "breast"),
        _s("breast_lift", "breast lift", "breast"),
        _s("breast_reduction", "breast reduction", "breast"),
        _s("implant_exchange", "implant exchange", "breast"),
        _s("tummy_tuck", "tummy tuck", "body", aliases=("abdominoplasty",)),
        _s("liposuction", "liposuction", "body"),
        _s("bbl", "Brazilian butt lift", "body"),
        _s("mommy_makeover", "mommy makeover", "body"),
        _s("facelift", "facelift", "face"),
        _s("blepharoplasty", "eyelid surgery", "face", aliases=("eyelid_surgery",)),
        _s("brow_lift", "brow lift", "face"),
        _s("neck_lift", "neck lift", "face"),
        _s("rhinoplasty", "rhinoplasty", "nose", aliases=("nose_job",)),
        _s("septorhinoplasty", "septorhinoplasty", "nose"),
        # dermatology: medical recalls on the same machinery
        _s(
            "skin_check",
            "skin check",
            "skin_check",
            recall_days=365,
            min_interval_days=300,
            aliases=("full_body_skin_exam",),
        ),
        _s("mole_mapping", "mole mapping", "skin_check", recall_days=180, min_interval_days=150),
        _s(
            "acne_treatment",
            "acne treatment",
            "acne",
            recall_days=56,
            min_interval_days=42,
            aliases=("acne",),
        ),
        _s(
            "psoriasis_care", "psoriasis care", "chronic_care", recall_days=90, min_interval_days=60
        ),
        _s("eczema_care", "eczema care", "chronic_care", recall_days=90, min_interval_days=60),
        _s("rosacea_care", "rosacea care", "chronic_care", recall_days=120, min_interval_days=90),
    )
}

ALIASES: dict[str, str] = {alias: s.key for s in SERVICES.values() for alias in s.aliases}
DEFAULT_SERVICE: dict[str, str] = {
    # The service a family's track assumes until a treatment names one.
    "surgery": "surgical_consult",
    "breast": "breast_augmentation",
    "body": "tummy_tuck",
    "face": "facelift",
    "nose": "rhinoplasty",
    "tox": "tox",
    "filler": "filler",
    "biostimulator": "sculptra",
    "fat_dissolving": "kybella",
    "laser_hair": "laser_hair_removal",
    "ipl": "ipl",
    "resurfacing": "laser_resurfacing",
    "microneedling": "microneedling",
    "cryolipolysis": "coolsculpting",
    "muscle_sculpting": "emsculpt",
    "skin_tightening": "body_tightening",
    "skin_check": "skin_check",
    "acne": "acne_treatment",
    "chronic_care": "psoriasis_care",
}


def find_service(key: str | None) -> Service | None:
    """The catalog entry for a service key or alias; None when unknown."""
    if not key:
        return None
    return SERVICES.get(key) or SERVICES.get(ALIASES.get(key, ""))


def with_overrides(service: Service, overrides: dict[str, int | None]) -> Service:
    """The service with a practice's rhythm overrides applied (validated by the API)."""
    allowed = {k: v for k, v in overrides.items() if k in OVERRIDABLE}
    return replace(service, **allowed)  # type: ignore[arg-type]


def rhythm(service: Service) -> dict[str, int | None]:
    return {f.name: getattr(service, f.name) for f in fields(service) if f.name in OVERRIDABLE}


def validate_rhythm(service: Service) -> list[tuple[str, str]]:
    """Field-level problems with a (possibly overridden) service's rhythm."""
    problems: list[tuple[str, str]] = []
    for name in OVERRIDABLE:
        value = getattr(service, name)
        if value is not None and not (0 < value <= 3650):
            problems.append((name, "must be between 1 and 3650"))
    if service.series_sessions > 1 and not service.session_interval_days:
        problems.append(("session_interval_days", "a series needs a session interval"))
    if service.series_sessions > 30:
        problems.append(("series_sessions", "at most 30 sessions"))
    if not service.is_series and service.line is not RevenueLine.SURGICAL:
        if not service.recall_days:
            problems.append(("recall_days", "a recurring service needs a recall interval"))
    if service.min_interval_days and service.recall_days:
        if service.recall_days < service.min_interval_days:
            problems.append(("recall_days", "the recall may not come before min_interval_days"))
    return problems
