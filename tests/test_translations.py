"""The web app's message catalogs: every text of the pages is translated into Arabic,
the compiled catalog is the one its source says, and placeholders survive translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "exchange_node"
TRANSLATIONS = PACKAGE / "translations"
LANGUAGES = ("ar",)
METHODS = [("web/**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"trimmed": "true"}}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> set[str | tuple[str, ...]]:
    """The message ids the code and templates use today (what ``pybabel extract`` finds)."""
    keywords = dict(DEFAULT_KEYWORDS) | {"lazy_gettext": None, "lazy_ngettext": (1, 2)}
    found: set[str | tuple[str, ...]] = set()
    for _, _, message, _, _ in extract_from_dir(PACKAGE, METHODS, OPTIONS, keywords):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def catalog(language: str) -> Catalog:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as file:
        return read_po(file, locale=language)


def hashable(value: str | list[str] | tuple[str, ...]) -> str | tuple[str, ...]:
    """``read_mo`` gives plural ids and strings as lists, ``read_po`` as tuples."""
    return value if isinstance(value, str) else tuple(value)


def key(message_id: str | tuple[str, ...]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_of_the_pages_is_translated(language: str) -> None:
    po = catalog(language)
    missing = sorted(
        key(message_id)
        for message_id in extracted()
        if (entry := po.get(key(message_id))) is None
        or entry.fuzzy
        or not all(entry.string if isinstance(entry.string, tuple) else (entry.string,))
    )
    assert not missing, f"untranslated in {language} (see README: Translations): {missing}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_placeholder(language: str) -> None:
    wrong = []
    for entry in catalog(language):
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        expected = set(PLACEHOLDER.findall(" ".join(ids)))
        for string in strings:
            if string and set(PLACEHOLDER.findall(string)) != expected:
                wrong.append(ids[0])
    assert not wrong, f"placeholders differ in {language}: {wrong}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalog_matches_its_source(language: str) -> None:
    po = catalog(language)
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo").open("rb") as file:
        mo = read_mo(file)
    source = {hashable(e.id): hashable(e.string) for e in po if e.id and not e.fuzzy}
    compiled = {hashable(e.id): hashable(e.string) for e in mo if e.id}
    assert compiled == source, "run: pybabel compile -d exchange_node/translations"
