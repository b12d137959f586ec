"""Builders of valid message bodies for protocol tests; override any member."""

from __future__ import annotations

from typing import Any

SERVICE_ID = "svc-youth-health"


def consent(recipient: str, **overrides: Any) -> dict[str, Any]:
    return {
        "consent_id": "consent-1",
        "given_by": "self",
        "recipient": recipient,
        "service_id": SERVICE_ID,
        "data_categories": ["identity", "contact", "gender_identity"],
        "purpose": "Referral to the youth health drop-in and follow-up on its outcome.",
        "method": "verbal",
        "captured_by": "staff-0042",
        "captured_at": "2026-12-31T22:00:00Z",
        "expires_at": "2027-03-31T00:00:00Z",
    } | overrides


def referral(recipient: str, **overrides: Any) -> dict[str, Any]:
    return {
        "referral_id": "ref-1",
        "service_id": SERVICE_ID,
        "capacity_version": 7,
        "person": {"preferred_name": "Sam", "phone": "+44 7700 900123", "pronouns": "they/them"},
        "consent": consent(recipient),
        "safe_contact": {
            "channels": ["sms"],
            "voicemail_allowed": False,
            "may_name_organization": False,
            "do_not_disclose": ["gender identity"],
        },
    } | overrides


def status_change(**overrides: Any) -> dict[str, Any]:
    return {
        "referral_id": "ref-1",
        "status": "accepted",
        "sequence": 1,
        "changed_at": "2027-01-01T00:00:00Z",
    } | overrides
