"""The closed vocabulary of intake fields a referral may carry, and their data categories.

A service says in its capacity document which of these fields it needs; a
referral carries only fields the service asked for, and only when the person's
consent names each field's data category. Sensitive categories are listed one
by one, so consent to "health" never implies consent to "gender_identity".
This module holds the vocabulary and the consent rule; it stores nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final

#: Data categories a consent record can name (after ISO/IEC TS 27560 "personal data categories").
DATA_CATEGORIES: Final = (
    "identity",
    "contact",
    "demographics",
    "language",
    "needs",
    "education",
    "housing",
    "legal",
    "gender_identity",
    "sexual_orientation",
    "health",
    "immigration_status",
)

#: Special categories: shared only when the consent names each one explicitly.
SENSITIVE_CATEGORIES: Final = frozenset(
    {"gender_identity", "sexual_orientation", "health", "immigration_status"}
)

#: Intake field name -> (data category, largest length in characters).
INTAKE_FIELDS: Final[Mapping[str, tuple[str, int]]] = {
    "given_name": ("identity", 100),
    "family_name": ("identity", 100),
    "preferred_name": ("identity", 100),
    "date_of_birth": ("demographics", 10),
    "age": ("demographics", 3),
    "phone": ("contact", 32),
    "email": ("contact", 254),
    "postal_address": ("contact", 300),
    "preferred_language": ("language", 35),
    "needs_summary": ("needs", 2000),
    "school_name": ("education", 200),
    "grade_level": ("education", 32),
    "housing_situation": ("housing", 500),
    "legal_matter_summary": ("legal", 2000),
    "pronouns": ("gender_identity", 40),
    "gender_identity": ("gender_identity", 100),
    "sexual_orientation": ("sexual_orientation", 100),
    "health_summary": ("health", 2000),
    "immigration_status": ("immigration_status", 200),
}


def category_of(field_name: str) -> str:
    """The data category of an intake field (``KeyError`` for a name outside the vocabulary)."""
    return INTAKE_FIELDS[field_name][0]


def uncovered_fields(fields: Collection[str], consented_categories: Collection[str]) -> list[str]:
    """The field names whose category the consent does not name, sorted."""
    allowed = set(consented_categories)
    return sorted(name for name in fields if category_of(name) not in allowed)


__all__ = [
    "DATA_CATEGORIES",
    "INTAKE_FIELDS",
    "SENSITIVE_CATEGORIES",
    "category_of",
    "uncovered_fields",
]
