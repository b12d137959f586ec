"""The directory: searching the services of trusted peers, with capacity and freshness."""

from __future__ import annotations

from flask import Blueprint

from exchange_node.web.ui_pages import page_blueprint

blueprint = page_blueprint("directory", __name__, url_prefix="/directory")

#: Every blueprint of this area; the app registers them all.
BLUEPRINTS: tuple[Blueprint, ...] = (blueprint,)
