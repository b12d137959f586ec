"""The local REST API for this node's services and their capacity (scope capacity:write)."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("api_services", __name__)
