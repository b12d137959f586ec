"""The local REST API for searching trusted peers' services (scope directory:read)."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("api_directory", __name__)
