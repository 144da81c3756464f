"""The dashboard page: the funnel report rendered server-side with jinja2 (autoescaped), the
speed-to-lead histogram as inline SVG. No scripts, no external assets, nothing to build."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape

from models.enums import Stage

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

LABELS = {
    Stage.INQUIRY.value: "1 · Inquiry",
    Stage.SPEED_TO_LEAD.value: "2 · Speed to lead",
    Stage.CONSULT_BOOKED.value: "3 · Consult booked",
    Stage.CONSULT_SHOW.value: "4 · Consult show",
    Stage.TREATMENT.value: "5 · Treatment",
    Stage.REBOOK.value: "6 · Rebook",
    Stage.REACTIVATION.value: "7 · Reactivation",
    Stage.REVIEWS_REFERRALS.value: "8 · Reviews & referrals",
}
# The industry's figure shown beside the stage where that leak happens.
INDUSTRY_AT = {
    Stage.SPEED_TO_LEAD.value: "inquiries_lost",
    Stage.CONSULT_SHOW.value: "no_show_or_cancel",
    Stage.REBOOK.value: "never_rebook",
}


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def money(value: float) -> str:
    return f"${value:,.0f}"


def histogram_svg(histogram: list[dict[str, Any]]) -> dict[str, Any]:
    """Bar geometry for the template (the template writes the SVG, escaped)."""
    width, height, pad = 560, 180, 28
    top = max((b["count"] for b in histogram), default=0) or 1
    step = (width - pad) / max(1, len(histogram))
    bars = []
    for i, b in enumerate(histogram):
        h = (height - 2 * pad) * b["count"] / top
        bars.append(
            {
                "x": round(pad + i * step + 4, 1),
                "y": round(height - pad - h, 1),
                "w": round(step - 8, 1),
                "h": round(h, 1),
                "label": b["bucket"],
                "count": b["count"],
                "cx": round(pad + i * step + step / 2, 1),
            }
        )
    return {"width": width, "height": height, "base": height - pad, "bars": bars}


def render(
    practice_name: str,
    body: dict[str, Any],
    token: str | None = None,
    compare: dict[str, Any] | None = None,
) -> str:
    stages = body["stages"]
    # The other source's leak per stage, when it has data at all ("historical" vs "live").
    other: dict[str, Any] = {}
    if compare is not None and any(s["entered"] for s in compare["stages"]):
        other = {s["stage"]: s for s in compare["stages"]}
    worst = max(
        (s for s in stages if s["leak_rate"] is not None and s["leaked"] > 0),
        key=lambda s: s["leak_rate"],
        default=None,
    )

    def link(source: str) -> str:
        query = {"source": source, "from": body["from"][:10], "to": body["to"][:10]}
        if token:
            query["token"] = token
        return "/v1/dashboard?" + urlencode(query)

    return _ENV.get_template("dashboard.html").render(
        practice=practice_name,
        body=body,
        stages=stages,
        labels=LABELS,
        industry_at=INDUSTRY_AT,
        worst=worst,
        svg=histogram_svg(body["speed_to_lead"]["histogram"]),
        pct=pct,
        duration=duration,
        money=money,
        other=other,
        other_name="historical" if body["source"] == "live" else "live",
        live_link=link("live"),
        history_link=link("history"),
    )
