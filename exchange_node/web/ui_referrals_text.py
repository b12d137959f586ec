"""The words the referral pages show for the protocol's codes, in the reader's language.

Intake fields (label, hint, input type), data categories, contact channels, days,
consent methods and givers, statuses, reasons, timeline events and delivery states.
Codes stay codes everywhere else; only pages turn them into words. Nothing here
renders or decides anything.
"""

from __future__ import annotations

from typing import NamedTuple

from flask_babel import lazy_gettext as _l


class FieldText(NamedTuple):
    label: str
    hint: str | None = None
    #: The input's type, or "textarea".
    type: str = "text"
    autocomplete: str = "off"


_SENSITIVE_HINT = _l(
    "Sensitive: sent only if the person agrees to share it, asked separately on the next step."
)

#: Intake field -> how the form asks for it (every field of the vocabulary; a test checks).
FIELDS: dict[str, FieldText] = {
    "given_name": FieldText(_l("Given name")),
    "family_name": FieldText(_l("Family name")),
    "preferred_name": FieldText(
        _l("Preferred name"), _l("The name the person wants to be called.")
    ),
    "date_of_birth": FieldText(_l("Date of birth"), type="date"),
    "age": FieldText(_l("Age"), _l("In years."), type="number"),
    "phone": FieldText(_l("Phone number"), type="tel"),
    "email": FieldText(_l("E-mail address"), type="email"),
    "postal_address": FieldText(_l("Postal address"), type="textarea"),
    "preferred_language": FieldText(
        _l("Preferred language"), _l("The language the person wants to be helped in.")
    ),
    "needs_summary": FieldText(
        _l("What the person needs help with"),
        _l("A short summary: only what the service needs to know."),
        type="textarea",
    ),
    "school_name": FieldText(_l("School")),
    "grade_level": FieldText(_l("School year or grade")),
    "housing_situation": FieldText(_l("Housing situation"), type="textarea"),
    "legal_matter_summary": FieldText(
        _l("Legal matter"), _l("A short summary of the matter."), type="textarea"
    ),
    "pronouns": FieldText(_l("Pronouns"), _SENSITIVE_HINT),
    "gender_identity": FieldText(_l("Gender identity"), _SENSITIVE_HINT),
    "sexual_orientation": FieldText(_l("Sexual orientation"), _SENSITIVE_HINT),
    "health_summary": FieldText(_l("Health summary"), _SENSITIVE_HINT, type="textarea"),
    "immigration_status": FieldText(_l("Immigration status"), _SENSITIVE_HINT),
}

#: Data category -> what the person agrees to share, as the consent step lists it.
CATEGORIES = {
    "identity": _l("Name"),
    "contact": _l("Contact details (phone, e-mail or address)"),
    "demographics": _l("Age or date of birth"),
    "language": _l("Preferred language"),
    "needs": _l("What the person needs help with"),
    "education": _l("School and school year"),
    "housing": _l("Housing situation"),
    "legal": _l("Legal matter"),
    "gender_identity": _l("Gender identity or pronouns"),
    "sexual_orientation": _l("Sexual orientation"),
    "health": _l("Health"),
    "immigration_status": _l("Immigration status"),
}
CHANNELS = {
    "phone-call": _l("Phone call"),
    "sms": _l("Text message (SMS)"),
    "email": _l("E-mail"),
    "post": _l("Post"),
    "in-person": _l("In person"),
    "via-referrer": _l("Through us (the referring organization)"),
}
DAYS = {
    "mon": _l("Monday"),
    "tue": _l("Tuesday"),
    "wed": _l("Wednesday"),
    "thu": _l("Thursday"),
    "fri": _l("Friday"),
    "sat": _l("Saturday"),
    "sun": _l("Sunday"),
}
METHODS = {
    "verbal": _l("Verbal (spoken)"),
    "written": _l("Written (signed form)"),
    "digital": _l("Digital (online form or message)"),
}
GIVERS = {
    "self": _l("The person themselves"),
    "parent-or-guardian": _l("A parent or guardian"),
    "legal-representative": _l("A legal representative"),
}
STATUSES = {
    "requested": _l("Requested"),
    "accepted": _l("Accepted"),
    "rejected": _l("Declined"),
    "cancelled": _l("Cancelled"),
    "in-progress": _l("In progress"),
    "on-hold": _l("On hold"),
    "completed": _l("Completed"),
    "failed": _l("Not completed"),
    "entered-in-error": _l("Entered in error"),
}
#: Status -> badge class (app.css).
STATUS_BADGES = {
    "requested": "warn",
    "accepted": "ok",
    "in-progress": "ok",
    "on-hold": "warn",
    "completed": "ok",
}
#: Status -> the button that moves a referral there.
ACTIONS = {
    "accepted": _l("Accept"),
    "rejected": _l("Decline"),
    "in-progress": _l("Start"),
    "on-hold": _l("Put on hold"),
    "completed": _l("Complete"),
    "failed": _l("Close as not completed"),
    "cancelled": _l("Cancel the referral"),
}
REASONS = {
    "no-capacity": _l("No capacity"),
    "not-eligible": _l("Not eligible"),
    "could-not-contact": _l("Could not contact the person"),
    "person-declined": _l("The person declined"),
    "other": _l("Other (say what)"),
}
SIDES = {
    "sender": _l("by the referring organization"),
    "receiver": _l("by the receiving organization"),
}
EVENTS = {
    "withdrawn": _l("Consent withdrawn"),
    "purged": _l("Personal data deleted here"),
    "deleted-at-peer": _l("Deleted at the peer"),
    "delivery-failed": _l("A message could not be delivered"),
}
PURGE_REASONS = {
    "withdrawn": _l("The person withdrew consent."),
    "retention": _l("The time for keeping it ended."),
}
MESSAGES = {
    "referral": _l("The referral"),
    "referral-status": _l("A status change"),
    "consent-withdrawal": _l("The consent withdrawal"),
}
#: Outbox state -> (words, badge class).
DELIVERY = {
    "pending": (_l("Queued"), "warn"),
    "delivered": (_l("Delivered"), "ok"),
    "failed": (_l("Failed"), "bad"),
    "cancelled": (_l("Cancelled"), "muted"),
}
ROLES = {"received": _l("Incoming"), "sent": _l("Outgoing")}
