"""What the administration pages share: their blueprints, labels, form input.

Every administration blueprint is an administrators-only page blueprint whose templates
get the section menu and the labels of peer states, roles and key states. This module
renders nothing itself and holds no blueprint.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask_babel import lazy_gettext
from werkzeug.exceptions import Forbidden

from exchange_node.db.models import PeerStatus
from exchange_node.errors import ExchangeError
from exchange_node.web import ui_session
from exchange_node.web.ui_pages import page_blueprint

#: The administration menu: (endpoint, label).
SECTIONS = (
    ("admin.index", lazy_gettext("Overview")),
    ("admin_peers.index", lazy_gettext("Peers")),
    ("admin_users.index", lazy_gettext("Users")),
    ("admin_clients.index", lazy_gettext("Integration clients")),
    ("admin.keys", lazy_gettext("Keys")),
    ("admin.audit", lazy_gettext("Audit log")),
)
PEER_STATES = {
    PeerStatus.PENDING: (lazy_gettext("Waiting for acceptance"), "warn"),
    PeerStatus.TRUSTED: (lazy_gettext("Trusted"), "ok"),
    PeerStatus.SUSPENDED: (lazy_gettext("Suspended"), "bad"),
    PeerStatus.REMOVED: (lazy_gettext("Removed"), "muted"),
}
ROLES = {"admin": lazy_gettext("Administrator"), "staff": lazy_gettext("Staff")}
KEY_STATES = {
    "next": (lazy_gettext("Next (published, not signing yet)"), "warn"),
    "active": (lazy_gettext("Active"), "ok"),
    "retiring": (lazy_gettext("Retiring (still published)"), "muted"),
    "retired": (lazy_gettext("Retired"), "muted"),
}
KEY_USES = {"sig": lazy_gettext("Signing"), "enc": lazy_gettext("Encryption")}


def admin_blueprint(name: str, import_name: str, url_prefix: str) -> Blueprint:
    """A page blueprint for administrators only, with the section menu and labels."""
    blueprint = page_blueprint(name, import_name, url_prefix=url_prefix)

    @blueprint.before_request
    def administrators_only() -> None:
        # Every view is also decorated with login_required(role="admin"); this keeps a
        # forgotten decorator from opening a page (someone signed out is sent to sign in
        # by the decorator, so only a signed-in non-administrator is refused here).
        user = ui_session.current_user()
        if user is not None and not user.is_admin:
            raise Forbidden()

    @blueprint.context_processor
    def labels() -> dict[str, Any]:
        return {
            "sections": [(endpoint, label, _current(endpoint)) for endpoint, label in SECTIONS],
            "peer_states": PEER_STATES,
            "role_labels": ROLES,
            "key_states": KEY_STATES,
            "key_uses": KEY_USES,
        }

    return blueprint


def form_text(name: str, limit: int) -> str:
    """A form field, stripped and cut to ``limit`` characters (services check the rest)."""
    return request.form.get(name, "").strip()[:limit]


def field_problems(error: ExchangeError) -> dict[str, str]:
    """A service error's fields (``/email`` -> rules) as form field -> the first rule."""
    return {name.lstrip("/"): rules[0] for name, rules in error.fields.items() if rules}


def _current(endpoint: str) -> str | None:
    """``aria-current`` of a menu entry: ``page`` on it, ``true`` on a page under it."""
    if request.endpoint == endpoint:
        return "page"
    blueprint, _, view = endpoint.partition(".")
    if blueprint != "admin" and request.blueprint == blueprint:
        return "true"
    if blueprint == "admin" and view != "index" and (request.endpoint or "").startswith(endpoint):
        return "true"
    return None
