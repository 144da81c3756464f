from __future__ import annotations

import re

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from activities.templates import TEMPLATES, _env, render
from workflows.catalog import SERVICES
from workflows.library import resolve_track, templates_used
from workflows.tracks import TRACKS

CONTEXT = {
    "first_name": "Ada",
    "practice": "Glow Aesthetics",
    "booking_url": "https://book.example.com",
    "review_url": "https://review.example.com",
    "appointment": "Sat Dec 5 at 3:00 PM",
    "treatment": "your treatment",
    "referral_url": "https://book.example.com?ref=1234",
}
TREATMENT_WORDS = re.compile(r"botox|tox\b|filler|laser|liposuction|breast|rhinoplasty", re.I)


def referenced_templates() -> set[str]:
    names = set()
    for track in TRACKS.values():
        for value in vars(track).values():
            if isinstance(value, tuple):
                names |= {s.template for s in value if getattr(s, "template", None)}
    for service in SERVICES.values():
        names |= templates_used(resolve_track(service.line, service.key))
    return names


def test_every_template_a_track_uses_exists() -> None:
    missing = referenced_templates() - TEMPLATES.keys()
    assert not missing


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_renders_phi_minimal(name: str) -> None:
    subject, body = render(name, CONTEXT)
    assert "{{" not in body and "{{" not in subject
    assert not TREATMENT_WORDS.search(body), "no treatment names unless the practice opts in"
    if TEMPLATES[name].marketing:
        assert body.endswith("Reply STOP to opt out.")


def test_rendering_is_sandboxed_and_strict() -> None:
    with pytest.raises(UndefinedError):
        render("inquiry_reply", {})
    with pytest.raises(SecurityError):
        _env.from_string("{{ ''.__class__.__mro__[1].__subclasses__() }}").render()
