"""Languages of the web app: English and Arabic (right to left), through Flask-Babel.

The language is the one chosen with the switch (kept in the session), else the best
match of the browser's ``Accept-Language``, else English. Message catalogs live in
``exchange_node/translations`` (``.po`` edited, ``.mo`` compiled next to it; a test
checks they agree). Times are stored as Unix seconds and shown in the node's time
zone (UTC) in the reader's locale. Protocol text, codes and logs stay in English.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from babel.dates import format_timedelta
from flask import Flask, request, session
from flask_babel import Babel, format_datetime, format_decimal, get_locale

DEFAULT_LANGUAGE = "en"


class Language(NamedTuple):
    code: str
    name: str  # in the language itself, as the switch shows it
    direction: str  # "ltr" or "rtl"


LANGUAGES = {
    "en": Language("en", "English", "ltr"),
    "ar": Language("ar", "العربية", "rtl"),
}


def select_language() -> str:
    chosen = session.get("lang")
    if isinstance(chosen, str) and chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT_LANGUAGE)


def current_language() -> Language:
    locale = get_locale()
    return LANGUAGES.get(locale.language if locale else DEFAULT_LANGUAGE, LANGUAGES["en"])


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    Babel(app, locale_selector=select_language)
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.globals.update(current_language=current_language, languages=LANGUAGES)
    app.jinja_env.filters.update(when=show_time, ago=show_age, number=show_number)


def show_time(seconds: int | None, style: str = "medium") -> str:
    """A stored Unix time as the reader's locale writes it; empty for None."""
    if seconds is None:
        return ""
    return str(format_datetime(datetime.fromtimestamp(seconds, UTC), style))


def show_age(seconds: int | None, now: int) -> str:
    """How long ago ``seconds`` was, in the reader's language ("3 days")."""
    if seconds is None:
        return ""
    locale = get_locale()
    return format_timedelta(max(0, now - seconds), locale=locale or DEFAULT_LANGUAGE)


def show_number(value: float | int | None) -> str:
    return "" if value is None else str(format_decimal(value))
