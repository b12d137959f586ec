"""Liveness and readiness, for process supervisors and load balancers."""

from __future__ import annotations

from flask import Blueprint

from exchange_node.web.context import current_node

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """The process answers."""
    return {"status": "ok"}, 200


@blueprint.get("/readyz")
def readyz() -> tuple[dict[str, str], int]:
    """The database answers and this node's keys load; otherwise a 503 or 500 problem."""
    node = current_node()
    node.database.ping()
    with node.database.session() as session:
        node.ring(session)
    return {"status": "ready"}, 200
