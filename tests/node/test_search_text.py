"""Text as search sees it: the index and the query fold the same way."""

from __future__ import annotations

import pytest

from exchange_node.services.search_text import searchable, words


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("Café AU LAIT", "cafe au lait"),
        ("صِحَّة", "صحه"),  # short vowels and shadda dropped, teh marbuta as heh
        ("أطفال", "اطفال"),  # alef with hamza above
        ("إرشاد", "ارشاد"),  # alef with hamza below
        ("آمن", "امن"),  # alef with madda
        ("مستشفى", "مستشفي"),  # alef maqsura as yeh
        ("مـــدرسة", "مدرسه"),  # tatweel removed
        ("Straße", "strasse"),  # case folding, not just lowering
    ],
)
def test_searchable_folds_case_marks_and_arabic_variants(written: str, folded: str) -> None:
    assert searchable(written) == folded


def test_words_are_letters_and_digits_only() -> None:
    assert words('Legal "aid" OR near(24/7) — مساعدة قانونية*') == [
        "legal",
        "aid",
        "or",
        "near",
        "24",
        "7",
        "مساعده",
        "قانونيه",
    ]
    assert words("*:()\"'") == []
