"""The words the pages show for the protocol's codes, in the reader's language.

Intake fields (label, hint, input type), data categories, contact channels, days,
consent methods and givers, statuses, reasons, timeline events and delivery states:
one table each, shared by every page (the referral pages, the dashboard, the capacity
form), so a code has one name everywhere. Codes stay codes everywhere else; only pages
turn them into words. Nothing here renders or decides anything.
"""

from __future__ import annotations

from typing import NamedTuple

from flask_babel import lazy_gettext


class FieldText(NamedTuple):
    label: str
    hint: str | None = None
    #: The input's type, or "textarea".
    type: str = "text"
    autocomplete: str = "off"


_SENSITIVE_HINT = lazy_gettext(
    "Sensitive: sent only if the person agrees to share it, asked separately on the next step."
)

#: Intake field -> how the form asks for it (every field of the vocabulary; a test checks).
FIELDS: dict[str, FieldText] = {
    "given_name": FieldText(lazy_gettext("Given name")),
    "family_name": FieldText(lazy_gettext("Family name")),
    "preferred_name": FieldText(
        lazy_gettext("Preferred name"), lazy_gettext("The name the person wants to be called.")
    ),
    "date_of_birth": FieldText(lazy_gettext("Date of birth"), type="date"),
    "age": FieldText(lazy_gettext("Age"), lazy_gettext("In years."), type="number"),
    "phone": FieldText(lazy_gettext("Phone number"), type="tel"),
    "email": FieldText(lazy_gettext("E-mail address"), type="email"),
    "postal_address": FieldText(lazy_gettext("Postal address"), type="textarea"),
    "preferred_language": FieldText(
        lazy_gettext("Preferred language"),
        lazy_gettext("The language the person wants to be helped in."),
    ),
    "needs_summary": FieldText(
        lazy_gettext("What the person needs help with"),
        lazy_gettext("A short summary: only what the service needs to know."),
        type="textarea",
    ),
    "school_name": FieldText(lazy_gettext("School")),
    "grade_level": FieldText(lazy_gettext("School year or grade")),
    "housing_situation": FieldText(lazy_gettext("Housing situation"), type="textarea"),
    "legal_matter_summary": FieldText(
        lazy_gettext("Legal matter"),
        lazy_gettext("A short summary of the matter."),
        type="textarea",
    ),
    "pronouns": FieldText(lazy_gettext("Pronouns"), _SENSITIVE_HINT),
    "gender_identity": FieldText(lazy_gettext("Gender identity"), _SENSITIVE_HINT),
    "sexual_orientation": FieldText(lazy_gettext("Sexual orientation"), _SENSITIVE_HINT),
    "health_summary": FieldText(lazy_gettext("Health summary"), _SENSITIVE_HINT, type="textarea"),
    "immigration_status": FieldText(lazy_gettext("Immigration status"), _SENSITIVE_HINT),
}

#: Data category -> what the person agrees to share, as the consent step lists it.
CATEGORIES = {
    "identity": lazy_gettext("Name"),
    "contact": lazy_gettext("Contact details (phone, e-mail or address)"),
    "demographics": lazy_gettext("Age or date of birth"),
    "language": lazy_gettext("Preferred language"),
    "needs": lazy_gettext("What the person needs help with"),
    "education": lazy_gettext("School and school year"),
    "housing": lazy_gettext("Housing situation"),
    "legal": lazy_gettext("Legal matter"),
    "gender_identity": lazy_gettext("Gender identity or pronouns"),
    "sexual_orientation": lazy_gettext("Sexual orientation"),
    "health": lazy_gettext("Health"),
    "immigration_status": lazy_gettext("Immigration status"),
}
CHANNELS = {
    "phone-call": lazy_gettext("Phone call"),
    "sms": lazy_gettext("Text message (SMS)"),
    "email": lazy_gettext("E-mail"),
    "post": lazy_gettext("Post"),
    "in-person": lazy_gettext("In person"),
    "via-referrer": lazy_gettext("Through us (the referring organization)"),
}
DAYS = {
    "mon": lazy_gettext("Monday"),
    "tue": lazy_gettext("Tuesday"),
    "wed": lazy_gettext("Wednesday"),
    "thu": lazy_gettext("Thursday"),
    "fri": lazy_gettext("Friday"),
    "sat": lazy_gettext("Saturday"),
    "sun": lazy_gettext("Sunday"),
}
METHODS = {
    "verbal": lazy_gettext("Verbal (spoken)"),
    "written": lazy_gettext("Written (signed form)"),
    "digital": lazy_gettext("Digital (online form or message)"),
}
GIVERS = {
    "self": lazy_gettext("The person themselves"),
    "parent-or-guardian": lazy_gettext("A parent or guardian"),
    "legal-representative": lazy_gettext("A legal representative"),
}
STATUSES = {
    "requested": lazy_gettext("Requested"),
    "accepted": lazy_gettext("Accepted"),
    "rejected": lazy_gettext("Declined"),
    "cancelled": lazy_gettext("Cancelled"),
    "in-progress": lazy_gettext("In progress"),
    "on-hold": lazy_gettext("On hold"),
    "completed": lazy_gettext("Completed"),
    "failed": lazy_gettext("Not completed"),
    "entered-in-error": lazy_gettext("Entered in error"),
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
    "accepted": lazy_gettext("Accept"),
    "rejected": lazy_gettext("Decline"),
    "in-progress": lazy_gettext("Start"),
    "on-hold": lazy_gettext("Put on hold"),
    "completed": lazy_gettext("Complete"),
    "failed": lazy_gettext("Close as not completed"),
    "cancelled": lazy_gettext("Cancel the referral"),
}
REASONS = {
    "no-capacity": lazy_gettext("No capacity"),
    "not-eligible": lazy_gettext("Not eligible"),
    "could-not-contact": lazy_gettext("Could not contact the person"),
    "person-declined": lazy_gettext("The person declined"),
    "other": lazy_gettext("Other (say what)"),
}
SIDES = {
    "sender": lazy_gettext("by the referring organization"),
    "receiver": lazy_gettext("by the receiving organization"),
}
EVENTS = {
    "withdrawn": lazy_gettext("Consent withdrawn"),
    "purged": lazy_gettext("Personal data deleted here"),
    "deleted-at-peer": lazy_gettext("Deleted at the peer"),
    "delivery-failed": lazy_gettext("A message could not be delivered"),
}
PURGE_REASONS = {
    "withdrawn": lazy_gettext("The person withdrew consent."),
    "retention": lazy_gettext("The time for keeping it ended."),
}
#: Message types of the outbox.
MESSAGES = {
    "referral": lazy_gettext("Referral"),
    "referral-status": lazy_gettext("Status update"),
    "consent-withdrawal": lazy_gettext("Consent withdrawal"),
    "deletion-receipt": lazy_gettext("Deletion receipt"),
}
#: Outbox state -> (words, badge class).
DELIVERY = {
    "pending": (lazy_gettext("Queued"), "warn"),
    "delivered": (lazy_gettext("Delivered"), "ok"),
    "failed": (lazy_gettext("Failed"), "bad"),
    "cancelled": (lazy_gettext("Cancelled"), "muted"),
}
ROLES = {"received": lazy_gettext("Incoming"), "sent": lazy_gettext("Outgoing")}
#: The consent receipt speaks to the person: data category -> what of theirs is shared
#: (the same words as :data:`exchange_node.services.consent.CATEGORY_LABELS`; a test checks).
RECEIPT_CATEGORIES = {
    "identity": lazy_gettext("your name"),
    "contact": lazy_gettext("how to contact you (phone, e-mail or address)"),
    "demographics": lazy_gettext("your age or date of birth"),
    "language": lazy_gettext("the language you prefer"),
    "needs": lazy_gettext("a summary of what you need help with"),
    "education": lazy_gettext("your school and year"),
    "housing": lazy_gettext("your housing situation"),
    "legal": lazy_gettext("a summary of your legal matter"),
    "gender_identity": lazy_gettext("your gender identity or pronouns"),
    "sexual_orientation": lazy_gettext("your sexual orientation"),
    "health": lazy_gettext("a summary of your health"),
    "immigration_status": lazy_gettext("your immigration status"),
}
RECEIPT_GIVERS = {
    "self": lazy_gettext("You"),
    "parent-or-guardian": lazy_gettext("Your parent or guardian"),
    "legal-representative": lazy_gettext("Your legal representative"),
}
RECEIPT_METHODS = {
    "verbal": lazy_gettext("Spoken (verbal)"),
    "written": lazy_gettext("In writing"),
    "digital": lazy_gettext("Digitally"),
}
