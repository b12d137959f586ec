"""The open HSDS 3.1 API: this node's public services, for Open Referral tools."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("hsds", __name__)
