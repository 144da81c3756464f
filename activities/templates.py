"""Message templates: the built-in library, a practice's overrides, and the Jinja2 sandbox that
renders both.

PHI-minimal by default (DESIGN §6): a first name, the practice, a time and a link; a treatment
only through `{{ treatment }}`, named when the practice opts in. Marketing texts carry the STOP
language CTIA expects. An override is checked when it is saved (`validate_override`): syntax,
known variables only, a trial render, STOP language on marketing — so a broken override is
refused at save time, never discovered at send time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from activities.template_library import LIBRARY_TEMPLATES, STOP, Template, _t

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

BOOK = "Book here: {{ booking_url }}"
TEMPLATES: dict[str, Template] = {
    "inquiry_reply": _t(
        "Hi {{ first_name }}, thanks for reaching out to {{ practice }}! A member of our team "
        "will be in touch shortly. Want to pick a time now? " + BOOK,
        "Thanks for contacting {{ practice }}",
    ),
    "nurture_1": _t(
        "Hi {{ first_name }}, it's {{ practice }}. Any questions we can answer before your "
        "consultation? " + BOOK,
        "Questions before your consultation?",
    ),
    "nurture_2": _t(
        "{{ first_name }}, our patients say the consultation is the best first step. " + BOOK,
        "Your consultation at {{ practice }}",
    ),
    "nurture_3": _t(
        "Hi {{ first_name }}, we'd love to meet you at {{ practice }}. " + BOOK,
        "We'd love to meet you",
    ),
    "nurture_4": _t(
        "{{ first_name }}, still thinking it over? {{ practice }} is here when you're ready. "
        + BOOK,
        "Here when you're ready",
    ),
    "nurture_5": _t(
        "Hi {{ first_name }}, checking in from {{ practice }} one last time. " + BOOK,
        "Checking in",
    ),
    "consult_reminder_7d": _t(
        "Hi {{ first_name }}, your visit at {{ practice }} is on {{ appointment }}. "
        "Reply to this message if you need to reschedule.",
        "Your upcoming visit",
        marketing=False,
    ),
    "consult_reminder_2d": _t(
        "Reminder: {{ first_name }}, we'll see you {{ appointment }} at {{ practice }}.",
        "See you soon",
        marketing=False,
    ),
    "consult_reminder_1d": _t(
        "See you tomorrow, {{ first_name }}: {{ appointment }} at {{ practice }}.",
        "See you tomorrow",
        marketing=False,
    ),
    "consult_reminder_2h": _t(
        "{{ first_name }}, {{ practice }} is looking forward to seeing you at {{ appointment }}.",
        "See you shortly",
        marketing=False,
    ),
    "no_show_rebook_1": _t(
        "Hi {{ first_name }}, we missed you today at {{ practice }}. Let's find a new time: "
        + BOOK,
        "We missed you",
        marketing=False,
    ),
    "no_show_rebook_2": _t(
        "{{ first_name }}, life gets busy. {{ practice }} still has openings this week. " + BOOK,
        "Openings this week",
    ),
    "no_show_rebook_3": _t(
        "Hi {{ first_name }}, one more note from {{ practice }}: we'd love to see you. " + BOOK,
        "We'd love to see you",
    ),
    "cancel_rebook_1": _t(
        "Hi {{ first_name }}, your appointment at {{ practice }} was cancelled. Pick a new time "
        "whenever suits you: " + BOOK,
        "Your appointment was cancelled",
        marketing=False,
    ),
    "cancel_rebook_2": _t(
        "{{ first_name }}, ready to rebook with {{ practice }}? " + BOOK,
        "Ready to rebook?",
    ),
    **{
        f"quote_follow_up_{i}": _t(text + " " + BOOK, "Following up from {{ practice }}")
        for i, text in enumerate(
            (
                "Hi {{ first_name }}, thank you for visiting {{ practice }}. Any questions about "
                "your plan?",
                "{{ first_name }}, happy to walk you through your options again at {{ practice }}.",
                "Hi {{ first_name }}, when you're ready to go ahead, {{ practice }} is here.",
                "{{ first_name }}, a quick check-in from {{ practice }} about your plan.",
                "Hi {{ first_name }}, your plan from {{ practice }} is ready whenever you are.",
            ),
            start=1,
        )
    },
    **{
        f"post_op_{name}": _t(
            "Hi {{ first_name }}, it's {{ practice }} checking in on your recovery. "
            "Reply here with any concerns and our team will respond.",
            "How is your recovery going?",
            marketing=False,
        )
        for name in ("d1", "w1", "w2", "w6", "m3", "m6", "m12")
    },
    "review_ask": _t(
        "Hi {{ first_name }}, thank you for choosing {{ practice }}! Would you share your "
        "experience? {{ review_url }}",
        "How was your experience?",
    ),
    "referral_ask": _t(
        "{{ first_name }}, know someone who'd love {{ practice }}? Send them your link: "
        "{{ referral_url }}",
        "Share {{ practice }} with a friend",
    ),
    "cross_sell_maintenance": _t(
        "Hi {{ first_name }}, {{ practice }} offers treatments to keep your results fresh. " + BOOK,
        "Keep your results fresh",
    ),
    "recall_due": _t(
        "Hi {{ first_name }}, it's about time for your next visit at {{ practice }}. " + BOOK,
        "Time for your next visit",
    ),
    "recall_follow_up": _t(
        "{{ first_name }}, {{ practice }} has times available for your next visit. " + BOOK,
        "Times available",
    ),
    "recall_last": _t(
        "Hi {{ first_name }}, we haven't seen you in a while at {{ practice }}. " + BOOK,
        "We miss you",
    ),
    "series_next_session": _t(
        "Hi {{ first_name }}, your next session at {{ practice }} is due. " + BOOK,
        "Your next session is due",
        marketing=False,
    ),
    "series_missed_session": _t(
        "{{ first_name }}, staying on schedule gives the best results. {{ practice }} has "
        "openings: " + BOOK,
        "Stay on schedule",
    ),
    "maintenance_offer": _t(
        "Hi {{ first_name }}, time for a maintenance visit at {{ practice }}? " + BOOK,
        "Time for maintenance?",
    ),
    "package_next_session": _t(
        "Hi {{ first_name }}, time to book your next session at {{ practice }}. " + BOOK,
        "Book your next session",
        marketing=False,
    ),
    "results_check": _t(
        "Hi {{ first_name }}, {{ practice }} would love to see your results. " + BOOK,
        "Let's check your results",
        marketing=False,
    ),
    "next_package_offer": _t(
        "{{ first_name }}, ready for your next package at {{ practice }}? " + BOOK,
        "Ready for more?",
    ),
    **{
        f"reactivation_{i}": _t(text + " " + BOOK, "From {{ practice }}")
        for i, text in enumerate(
            (
                "Hi {{ first_name }}, it's been a while! {{ practice }} would love to see you.",
                "{{ first_name }}, {{ practice }} has new openings this month.",
                "Hi {{ first_name }}, a last note from {{ practice }}: we're here when "
                "you're ready.",
            ),
            start=1,
        )
    },
}


TEMPLATES |= LIBRARY_TEMPLATES

# What a template may use. `treatment` is the service's name only when the practice opts in.
VARIABLES = (
    "first_name",
    "practice",
    "booking_url",
    "review_url",
    "referral_url",
    "appointment",
    "treatment",
)
SAMPLE_CONTEXT = {
    "first_name": "Alex",
    "practice": "Sample Aesthetics",
    "booking_url": "https://book.example.com/sample",
    "review_url": "https://reviews.example.com/sample",
    "referral_url": "https://book.example.com/sample?ref=0000",
    "appointment": "Tue Mar 2 at 10:00 AM",
    "treatment": "your treatment",
}
MAX_SMS = 640  # four segments: longer texts split badly and read as spam
MAX_SUBJECT = 150


def lookup(template_id: str, overrides: Mapping[str, Any] | None = None) -> Template:
    """The practice's version of a template if it saved one, else the library's."""
    base = TEMPLATES.get(template_id) or _channel_template(template_id)
    edit = (overrides or {}).get(template_id)
    if not edit:
        return base
    return Template(edit.get("sms", base.sms), edit.get("subject", base.subject), base.marketing)


def render(
    template_id: str, context: dict[str, Any], overrides: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """Returns (subject, body). Raises KeyError for an unknown template id."""
    tpl = lookup(template_id, overrides)
    body = _env.from_string(tpl.sms).render(**context)
    subject = _env.from_string(tpl.subject).render(**context)
    return subject, body


def validate_override(template_id: str, sms: str, subject: str) -> list[tuple[str, str]]:
    """Field-level problems with a practice's text for `template_id` (empty: fine)."""
    if template_id not in TEMPLATES:
        return [("template_id", "no such template in the library")]
    problems: list[tuple[str, str]] = []
    for field, text, limit in (("sms", sms, MAX_SMS), ("subject", subject, MAX_SUBJECT)):
        try:
            used = meta.find_undeclared_variables(_env.parse(text))
        except TemplateError as err:
            problems.append((field, f"template syntax error: {err.message}"))
            continue
        unknown = sorted(used - set(VARIABLES))
        if unknown:
            problems.append(
                (field, f"unknown variables {unknown}; allowed: {', '.join(VARIABLES)}")
            )
            continue
        try:
            rendered = _env.from_string(text).render(**SAMPLE_CONTEXT)
        except TemplateError as err:
            problems.append((field, f"does not render: {type(err).__name__}"))
            continue
        if not rendered.strip():
            problems.append((field, "renders empty"))
        elif len(rendered) > limit:
            problems.append((field, f"renders {len(rendered)} characters; at most {limit}"))
    if TEMPLATES[template_id].marketing and "stop" not in sms.lower():
        problems.append(
            ("sms", f"a marketing text must tell how to opt out, e.g. '{STOP.strip()}'")
        )
    return problems


def _channel_template(template_id: str) -> Template:
    # Channel answers (HELP/STOP/START, missed-call text-back) live in their own module and
    # are not practice-editable (CTIA wording); imported here, not at the top, because that
    # module builds on this one's library.
    from activities.channel_templates import CHANNEL_TEMPLATES

    return CHANNEL_TEMPLATES[template_id]
