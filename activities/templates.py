"""Built-in message templates, rendered in a Jinja2 sandbox.

PHI-minimal by default (DESIGN §6): a first name, the practice, a time and a link — never a
treatment name. Marketing texts carry the STOP language CTIA expects. The full library with
practice overrides is issue 3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

STOP = " Reply STOP to opt out."


@dataclass(frozen=True)
class Template:
    sms: str
    subject: str
    marketing: bool = True

    @property
    def email(self) -> str:
        return self.sms


def _t(sms: str, subject: str, marketing: bool = True) -> Template:
    return Template(sms + (STOP if marketing else ""), subject, marketing)


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
        "{{ first_name }}, know someone who'd love {{ practice }}? Send them our way: "
        "{{ booking_url }}",
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


def render(template_id: str, context: dict[str, Any]) -> tuple[str, str]:
    """Returns (subject, body). Raises KeyError for an unknown template id."""
    tpl = TEMPLATES.get(template_id) or _channel_template(template_id)
    body = _env.from_string(tpl.sms).render(**context)
    subject = _env.from_string(tpl.subject).render(**context)
    return subject, body


def _channel_template(template_id: str) -> Template:
    # Channel answers (HELP/STOP/START, missed-call text-back) live in their own module;
    # imported here, not at the top, because that module builds on this one.
    from activities.channel_templates import CHANNEL_TEMPLATES

    return CHANNEL_TEMPLATES[template_id]
