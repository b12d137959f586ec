"""``POST /federation/v1/inbox``: sealed messages from trusted peers (SPEC 7)."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("inbox", __name__)
