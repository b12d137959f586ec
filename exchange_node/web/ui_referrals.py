"""Referrals: sending (service, fields, consent, receipt), following, acting on, withdrawing."""

from __future__ import annotations

from flask import Blueprint

from exchange_node.web.ui_pages import page_blueprint

blueprint = page_blueprint("referrals", __name__, url_prefix="/referrals")

#: Every blueprint of this area; the app registers them all.
BLUEPRINTS: tuple[Blueprint, ...] = (blueprint,)
