"""This node's own services and their capacity (a one-screen update that works on a phone)."""

from __future__ import annotations

from flask import Blueprint

from exchange_node.web.ui_pages import page_blueprint

blueprint = page_blueprint("services", __name__, url_prefix="/services")

#: Every blueprint of this area; the app registers them all.
BLUEPRINTS: tuple[Blueprint, ...] = (blueprint,)
