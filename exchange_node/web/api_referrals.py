"""``/api/v1/referrals``: sending, following and withdrawing referrals for integration clients."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("api_referrals", __name__)
