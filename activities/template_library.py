"""The library's message templates (issue 3): generic ones per stage, and ones written for each
service family from its own wording below.

PHI-minimal by default: a first name, the practice, a time, a link. A treatment appears only as
`{{ treatment }}`, which is the service's name when the practice opts in and a neutral phrase
otherwise, so the wording must read well either way. The family wording itself never names a
treatment. Marketing texts end with the STOP language CTIA expects (added by `_t`)."""

from __future__ import annotations

from dataclasses import dataclass

BOOK = "Book here: {{ booking_url }}"
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


@dataclass(frozen=True)
class Wording:
    """How one family is talked about: why book, what the visit is like, what comes next."""

    hook: str  # nurture: the reason to book
    visit: str  # before the consult: what to expect
    plan: str  # after the consult: the plan
    rhythm: str  # after treatment: why come back on time
    missed: str  # lapsed: why come back now


SURGICAL_FAMILIES = ("surgery", "breast", "body", "face", "nose")
WORDING: dict[str, Wording] = {
    "surgery": Wording(
        "a consultation is the best way to understand your options, recovery and costs",
        "your surgeon will listen to your goals and explain every option; bring your questions",
        "your personalised surgical plan and quote",
        "your recovery",
        "when the timing is right for you, your plan is still here",
    ),
    "breast": Wording(
        "our surgeon will walk you through sizing, options and recovery in a private consultation",
        "wear a comfortable top; we will talk through goals, sizing and recovery time",
        "the plan and quote we prepared after your consultation",
        "your recovery",
        "many patients take time to decide, and we are glad to revisit your plan",
    ),
    "body": Wording(
        "a consultation shows what is possible for your body goals and how recovery works",
        "plan about an hour; we will talk goals, recovery and time off work",
        "the contouring plan we discussed",
        "your recovery",
        "if life got in the way, we can pick your plan up again",
    ),
    "face": Wording(
        "our surgeon can show you natural-looking options in a private consultation",
        "come without makeup if you can; we will take photos and talk through options",
        "the plan we discussed for your goals",
        "your recovery",
        "we are happy to revisit your options whenever you are ready",
    ),
    "nose": Wording(
        "a consultation covers both appearance and breathing, with a clear recovery plan",
        "we will look at your goals and breathing and explain recovery step by step",
        "the plan from your consultation",
        "your recovery",
        "your consultation notes are on file whenever you want to continue",
    ),
    "tox": Wording(
        "most visits take about 15 minutes with no downtime",
        "the visit is quick; come with clean skin and your questions",
        "the treatment plan we discussed",
        "results last about three months, so staying on schedule keeps them smooth",
        "it has been a while, and a quick visit keeps your results consistent",
    ),
    "filler": Wording(
        "our injectors focus on subtle, natural-looking results",
        "plan about 45 minutes; avoid booking right before a big event",
        "the plan we put together for you",
        "results fade gradually over months, and a touch-up keeps them balanced",
        "a touch-up now keeps your results balanced",
    ),
    "biostimulator": Wording(
        "these treatments build gradual, natural-looking results over time",
        "we will map out a plan and timeline with you",
        "your plan and its timeline",
        "results build over a few sessions spaced weeks apart",
        "picking your plan back up keeps your progress going",
    ),
    "fat_dissolving": Wording(
        "a short consultation tells you how many sessions to expect",
        "we will assess the area and map out sessions with you",
        "your session plan",
        "results build session by session",
        "finishing your sessions gives you the result you came for",
    ),
    "laser_hair": Wording(
        "a series of quick sessions gives long-lasting results",
        "we will review your skin and hair type and plan your series",
        "your series plan",
        "sessions work best on schedule, weeks apart",
        "finishing your series is what makes the results last",
    ),
    "ipl": Wording(
        "a few short sessions can even out tone and brighten skin",
        "avoid sun before your visit; we will plan your sessions together",
        "your session plan",
        "a short series spaced a few weeks apart gives the best results",
        "completing your series brings out the full result",
    ),
    "resurfacing": Wording(
        "resurfacing can refresh texture and tone, with a plan matched to your downtime",
        "we will assess your skin and talk through downtime and aftercare",
        "your resurfacing plan",
        "sessions are spaced so your skin can renew in between",
        "your skin is ready for the next step whenever you are",
    ),
    "microneedling": Wording(
        "a short series can smooth texture with little downtime",
        "come with clean skin; we will plan your series together",
        "your series plan",
        "sessions a few weeks apart let your skin rebuild in between",
        "your next session keeps the collagen building",
    ),
    "cryolipolysis": Wording(
        "no surgery and no downtime; a consultation maps out your package",
        "wear comfortable clothes; we will assess areas and plan your package",
        "your package plan",
        "results show over about twelve weeks, and the next session builds on them",
        "finishing your package gets you the full result",
    ),
    "muscle_sculpting": Wording(
        "short sessions build and tone with no downtime",
        "wear comfortable clothes; sessions are quick and you can go right back to your day",
        "your session plan",
        "sessions close together build the best results",
        "finishing your sessions gets you the full result",
    ),
    "skin_tightening": Wording(
        "a short series can firm and smooth with no downtime",
        "we will assess the area and plan your sessions",
        "your session plan",
        "sessions on schedule give the firmest results",
        "finishing your sessions brings out the full result",
    ),
    "skin_check": Wording(
        "a yearly skin check is quick and catches changes early",
        "please come without nail polish or makeup so we can check your skin fully",
        "the follow-up plan from your visit",
        "a check every year is the simplest way to catch changes early",
        "your yearly skin check is overdue, and it only takes a few minutes",
    ),
    "acne": Wording(
        "our dermatology team builds a plan that works for your skin",
        "bring a list of the products and medicines you use",
        "the care plan from your visit",
        "regular follow-ups let us adjust your plan as your skin responds",
        "a follow-up visit keeps your plan working",
    ),
    "chronic_care": Wording(
        "our dermatology team can help you manage flares with a clear plan",
        "bring a list of your current treatments and medicines",
        "the care plan from your visit",
        "regular follow-ups keep your care plan up to date",
        "it is time to review your care plan",
    ),
}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _family_templates(family: str, w: Wording) -> dict[str, Template]:
    surgical = family in SURGICAL_FAMILIES
    out = {
        f"nurture_{family}": _t(
            "Hi {{ first_name }}, it's {{ practice }}. " + _cap(w.hook) + ". " + BOOK,
            "Why patients book with {{ practice }}",
        ),
        f"consult_prep_{family}": _t(
            "{{ first_name }}, your visit at {{ practice }} is on {{ appointment }}. "
            + _cap(w.visit)
            + ". Reply here to reschedule.",
            "Before your visit",
            marketing=False,
        ),
        f"quote_{family}": _t(
            "Hi {{ first_name }}, thank you for visiting {{ practice }}. Any questions about "
            + w.plan
            + "? "
            + BOOK,
            "Your plan from {{ practice }}",
        ),
        f"reactivation_lapsed_{family}": _t(
            "Hi {{ first_name }}, " + w.missed + ". {{ practice }} has openings. " + BOOK,
            "We'd love to see you again",
        ),
    }
    if surgical:
        out[f"post_op_{family}_d1"] = _t(
            "Hi {{ first_name }}, it's {{ practice }} checking in on day one of your recovery. "
            "Rest, follow your care sheet, and reply here with any concern: our team reads every "
            "message. For an emergency call 911.",
            "Checking in after your procedure",
            marketing=False,
        )
        return out
    out |= {
        f"recall_upcoming_{family}": _t(
            "Hi {{ first_name }}, " + w.rhythm + ". You'll be due in about two weeks; "
            "reserve a time at {{ practice }}: " + BOOK.split(": ")[1],
            "You'll be due soon",
        ),
        f"recall_due_{family}": _t(
            "{{ first_name }}, you're due for your next visit at {{ practice }}. " + BOOK,
            "You're due for your next visit",
        ),
        f"next_session_{family}": _t(
            "Hi {{ first_name }}, your next session at {{ practice }} is due: "
            + w.rhythm
            + ". "
            + BOOK,
            "Your next session is due",
            marketing=False,
        ),
        f"maintenance_{family}": _t(
            "Hi {{ first_name }}, it's been a while since you finished {{ treatment }} at "
            "{{ practice }}. A maintenance visit keeps your results. " + BOOK,
            "Keep your results",
        ),
        f"results_check_{family}": _t(
            "Hi {{ first_name }}, your results should be showing by now. {{ practice }} would love "
            "to see how you're doing at a quick results check. " + BOOK,
            "Time for your results check",
            marketing=False,
        ),
    }
    return out


_GENERIC: dict[str, Template] = {
    "nurture_surgical_2": _t(
        "{{ first_name }}, choosing a surgeon is a big decision. {{ practice }} is happy to answer "
        "questions by text or at a consultation. " + BOOK,
        "Choosing your surgeon",
    ),
    "nurture_surgical_3": _t(
        "Hi {{ first_name }}, many patients ask about recovery time and financing. We can cover "
        "both at your consultation with {{ practice }}. " + BOOK,
        "Recovery and financing questions",
    ),
    "nurture_surgical_4": _t(
        "{{ first_name }}, still researching? {{ practice }} can share before-and-after results "
        "at your consultation. " + BOOK,
        "See real results",
    ),
    "nurture_surgical_5": _t(
        "Hi {{ first_name }}, a last note from {{ practice }}: we're here whenever you're ready "
        "to talk. " + BOOK,
        "Here when you're ready",
    ),
    "nurture_aesthetic_2": _t(
        "{{ first_name }}, {{ practice }} has openings this week, including evenings. " + BOOK,
        "Openings this week",
    ),
    "nurture_aesthetic_3": _t(
        "Hi {{ first_name }}, still thinking about it? Reply with any question and "
        "{{ practice }} will answer. " + BOOK,
        "Any questions?",
    ),
    "nurture_derm_2": _t(
        "Hi {{ first_name }}, {{ practice }} has appointments available soon. " + BOOK,
        "Appointments available",
    ),
    "review_ask_surgical": _t(
        "Hi {{ first_name }}, it has been a pleasure caring for you at {{ practice }}. Would you "
        "share your experience? {{ review_url }}",
        "Would you share your experience?",
    ),
    "reactivation_quote_surgical_1": _t(
        "Hi {{ first_name }}, your surgical plan from {{ practice }} is still on file. Questions "
        "about timing or financing? Reply here. " + BOOK,
        "Your plan is on file",
    ),
    "reactivation_quote_aesthetic_1": _t(
        "Hi {{ first_name }}, the plan we discussed at {{ practice }} is ready when you are. "
        + BOOK,
        "Your plan is ready",
    ),
    "reactivation_quote_derm_1": _t(
        "Hi {{ first_name }}, a reminder from {{ practice }} about the care plan from your visit. "
        + BOOK,
        "Your care plan",
    ),
    "reactivation_quote_2": _t(
        "{{ first_name }}, {{ practice }} has new openings this month if you'd like to go ahead. "
        + BOOK,
        "New openings",
    ),
    "reactivation_quote_3": _t(
        "Hi {{ first_name }}, a last note from {{ practice }}: your plan stays on file whenever "
        "you want it. " + BOOK,
        "Whenever you're ready",
    ),
    "reactivation_cold_surgical_1": _t(
        "Hi {{ first_name }}, {{ practice }} here. If you're still considering surgery, a "
        "consultation is free of pressure. " + BOOK,
        "Still considering it?",
    ),
    "reactivation_cold_aesthetic_1": _t(
        "Hi {{ first_name }}, it's {{ practice }}. We'd still love to meet you. " + BOOK,
        "We'd still love to meet you",
    ),
    "reactivation_cold_derm_1": _t(
        "Hi {{ first_name }}, {{ practice }} here. Would you still like an appointment? " + BOOK,
        "Still need an appointment?",
    ),
    "reactivation_cold_2": _t(
        "{{ first_name }}, {{ practice }} has openings this month. " + BOOK,
        "Openings this month",
    ),
    "reactivation_cold_3": _t(
        "Hi {{ first_name }}, a last note from {{ practice }}: we're here when you're ready. "
        + BOOK,
        "Here when you're ready",
    ),
    "reactivation_lapsed_2": _t(
        "{{ first_name }}, {{ practice }} saved some times for returning patients this month. "
        + BOOK,
        "Times for returning patients",
    ),
    "reactivation_lapsed_3": _t(
        "Hi {{ first_name }}, one last note from {{ practice }}: we'd love to see you again. "
        + BOOK,
        "We'd love to see you again",
    ),
}

LIBRARY_TEMPLATES: dict[str, Template] = {
    **_GENERIC,
    **{k: v for fam, w in WORDING.items() for k, v in _family_templates(fam, w).items()},
}
