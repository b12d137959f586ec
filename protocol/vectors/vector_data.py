"""Example capacity and message bodies shared by the conformance vectors.

One service of the clinic, and the referral (with its consent) a community network
sends to it; ``BODIES`` holds one valid body per message type and ``ROUTES`` who sends
it to whom. Data only.
"""

from __future__ import annotations

SERVICE = {
    "service": {
        "id": "7d1b0c2e-6a43-4f0e-9b6a-3f2d1c0b9a87",
        "name": "Youth sexual health drop-in",
        "status": "active",
        "description": "Confidential, affirming sexual health care for people aged 13 to 25.",
        "languages": [{"id": "1f0c", "name": "Arabic", "code": "ar"}],
    },
    "capacity": {
        "status": "capacity",
        "accepting_referrals": True,
        "wait_days": 3,
        "intake_fields": ["preferred_name", "phone", "pronouns", "preferred_language"],
        "verified_at": "2026-12-31T16:00:00Z",
        "updated_at": "2026-12-31T16:05:00Z",
    },
}

CONSENT = {
    "consent_id": "c6f1e9a0-5b7d-4c1e-8f3a-2d9b0e4c7a11",
    "given_by": "self",
    "recipient": "https://clinic.example",
    "service_id": SERVICE["service"]["id"],
    "data_categories": ["identity", "contact", "gender_identity", "language"],
    "purpose": "Referral to the youth sexual health drop-in, and follow-up on its outcome.",
    "method": "verbal",
    "captured_by": "staff-0042",
    "captured_at": "2026-12-31T22:10:00Z",
    "expires_at": "2027-03-31T00:00:00Z",
}
REFERRAL = {
    "referral_id": "4a8e2f10-9c3b-4d6e-a1f7-0b5c8d2e6f93",
    "service_id": SERVICE["service"]["id"],
    "capacity_version": 42,
    "person": {
        "preferred_name": "Sam",
        "phone": "+44 7700 900123",
        "pronouns": "they/them",
        "preferred_language": "ar",
    },
    "consent": CONSENT,
    "safe_contact": {
        "channels": ["sms", "phone-call"],
        "windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "15:30", "end": "18:00"}
        ],
        "time_zone": "Europe/London",
        "voicemail_allowed": False,
        "may_name_organization": False,
        "do_not_disclose": ["gender identity", "the name of the referring network"],
        "notes": "Shares a phone with family; text first and wait for a reply.",
    },
}
BODIES = {
    "referral": REFERRAL,
    "referral-status": {
        "referral_id": REFERRAL["referral_id"],
        "status": "rejected",
        "sequence": 2,
        "changed_at": "2027-01-01T00:00:00Z",
        "reason": {"code": "no-capacity"},
        "note": "Please try again after 10 January.",
    },
    "consent-withdrawal": {
        "referral_id": REFERRAL["referral_id"],
        "consent_id": CONSENT["consent_id"],
        "withdrawn_at": "2027-01-01T00:00:00Z",
    },
    "deletion-receipt": {
        "referral_id": REFERRAL["referral_id"],
        "consent_id": CONSENT["consent_id"],
        "withdrawal_jti": "Qm9ndXNXaXRoZHJhd2FsSnRp",
        "deleted_at": "2027-01-01T00:00:00Z",
    },
}
# Who sends each type: the community network refers; the clinic answers.
ROUTES = {
    "referral": ("community", "clinic"),
    "referral-status": ("clinic", "community"),
    "consent-withdrawal": ("community", "clinic"),
    "deletion-receipt": ("clinic", "community"),
}
