"""Administration (administrators only): peers, users, integration clients, keys, the audit log."""

from __future__ import annotations

from flask import Blueprint

from exchange_node.web.ui_pages import page_blueprint

blueprint = page_blueprint("admin", __name__, url_prefix="/admin")

#: Every blueprint of this area; the app registers them all.
BLUEPRINTS: tuple[Blueprint, ...] = (blueprint,)
