"""Text as directory search sees it, the same on both sides: when indexed and when asked for.

Case is folded, combining marks are dropped (accents; Arabic short vowels and shadda),
and Arabic letter variants that people type interchangeably are unified (alef with
hamza or madda, teh marbuta and heh, alef maqsura and yeh; tatweel removed). SQLite's
FTS5 and PostgreSQL's ``simple`` configuration then see identical words, so a search
finds the same services on either database. Display text is never changed: only what
the full-text index holds and what a query looks for.
"""

from __future__ import annotations

import unicodedata

_ARABIC_VARIANTS = str.maketrans(
    {
        "\u0622": "\u0627",  # alef with madda above -> alef
        "\u0623": "\u0627",  # alef with hamza above -> alef
        "\u0625": "\u0627",  # alef with hamza below -> alef
        "\u0671": "\u0627",  # alef wasla -> alef
        "\u0629": "\u0647",  # teh marbuta -> heh
        "\u0649": "\u064a",  # alef maqsura -> yeh
        "\u0640": None,  # tatweel (kashida), a stretching stroke
    }
)


def searchable(text: str) -> str:
    """``text`` folded for matching (see the module docstring)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    unmarked = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", unmarked).translate(_ARABIC_VARIANTS)


def words(text: str) -> list[str]:
    """The searchable words of ``text``: runs of letters and digits, folded."""
    folded = searchable(text)
    return "".join(c if unicodedata.category(c)[0] in "LN" else " " for c in folded).split()


__all__ = ["searchable", "words"]
