"""Channel messages that belong to no journey step: the answers to HELP, STOP and START (CTIA's
required wording), the opt-in confirmation and the missed-call text-back. Same shapes as
the template library; `lookup()` in activities/templates.py looks here for ids it does not know.

Kept apart from the journey template library so the two can change independently."""

from __future__ import annotations

from activities.template_library import Template, _t

# CTIA: the HELP answer names the program, says how to get help and how to opt out; the STOP
# answer confirms the opt-out and sends nothing more; the opt-in confirmation names the program,
# the frequency, "Msg & data rates may apply", and HELP/STOP.
CHANNEL_TEMPLATES: dict[str, Template] = {
    "help_reply": _t(
        "{{ practice }}: {{ help_text }} Msg & data rates may apply. Reply STOP to opt out.",
        "Help from {{ practice }}",
        marketing=False,
    ),
    "opt_out_confirmation": _t(
        "{{ practice }}: You're unsubscribed and will receive no more texts. "
        "Reply START to resubscribe.",
        "You're unsubscribed",
        marketing=False,
    ),
    "opt_in_confirmation": _t(
        "{{ practice }}: You're subscribed to texts about your visits and offers. Msg frequency "
        "varies. Msg & data rates may apply. Reply HELP for help, STOP to opt out.",
        "You're subscribed",
        marketing=False,
    ),
    "missed_call_text_back": _t(
        "Hi {{ first_name }}, sorry we missed your call at {{ practice }}! How can we help? "
        "Reply here or book online: {{ booking_url }}",
        "Sorry we missed your call",
    ),
}


def default_help_text(practice: str) -> str:
    """What HELP answers when the practice has set no help text of its own."""
    return "Reply with your question and our team will get back to you."
