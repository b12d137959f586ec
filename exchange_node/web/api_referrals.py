"""``/api/v1/referrals``: sending, following and withdrawing referrals for integration clients.

Scopes: ``referrals:read`` to list and read referrals and consent receipts,
``referrals:write`` to send referrals, change their status and withdraw consent. The
integration client is the organization's case system, so reading one referral shows its
personal data, and that read is audited (SPEC 14 item 7); lists never do. Referrals are
named in URLs by their ``referral_id`` only (a UUID for those this node sends), never by
anything personal. Every answer is ``Cache-Control: no-store``. Views are thin: the
referral services check, store, queue and audit; errors leave as problem details.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from exchange_node.db.models import Referral
from exchange_node.errors import InvalidRequestError, NotFoundError
from exchange_node.services import consent, referral_queries, referrals
from exchange_node.services.clients import ApiClient
from exchange_node.web.context import current_node
from exchange_node.web.oauth import require_scope
from exchange_node.web.referral_schemas import (
    STATUSES,
    CreateReferralSchema,
    StatusChangeSchema,
)
from exchange_node.web.service_schemas import load_body

blueprint = Blueprint("api_referrals", __name__)
log = logging.getLogger("exchange_node.web")

REFERRALS_PATH = "/api/v1/referrals"
READ, WRITE = "referrals:read", "referrals:write"
ROLES = ("sent", "received")
DEFAULT_LIMIT, MAX_LIMIT = 100, referral_queries.MAX_LIST_LIMIT
RECEIPT_FORMATS = {"text": "text/plain; charset=utf-8", "html": "text/html; charset=utf-8"}
LIST_PARAMETERS = frozenset({"role", "status", "limit"})


@blueprint.after_request
def never_cache(response: Response) -> Response:
    """Referrals are personal data, or next to it: no cache keeps any answer."""
    response.cache_control.no_store = True
    return response


@blueprint.post(REFERRALS_PATH)
@require_scope(WRITE)
def create_referral(client: ApiClient) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Send a consented referral: stored, queued for delivery, 201 with its Location."""
    draft = _draft(load_body(CreateReferralSchema(), _json_body()))
    node = current_node()
    with node.database.session() as session:
        referral = referrals.create_referral(
            node, session, draft, actor=_actor(client), now=node.now()
        )
        created = referrals.describe(node, referral, personal=False)
    node.notify_outbox()
    referral_id = created["referral_id"]
    log.info("referral %s created by client %s", referral_id, client.client_id)
    return created, 201, {"Location": f"{node.settings.url}{REFERRALS_PATH}/{referral_id}"}


@blueprint.get(REFERRALS_PATH)
@require_scope(READ)
def list_referrals(client: ApiClient) -> dict[str, Any]:
    """Referrals, newest first, without personal data; ``role``, ``status``, ``limit``."""
    role, status, limit = _list_query()
    node = current_node()
    with node.database.session() as session:
        found = referrals.list_referrals(session, role=role, status=status, limit=limit)
        return {"referrals": [referrals.describe(node, r, personal=False) for r in found]}


@blueprint.get(f"{REFERRALS_PATH}/<referral_id>")
@require_scope(READ)
def show_referral(client: ApiClient, referral_id: str) -> dict[str, Any]:
    """One referral with its personal data; the read is audited."""
    node = current_node()
    with node.database.session() as session:
        referral = _find(session, referral_id)
        shown = referrals.describe(node, referral, personal=True)
        referral_queries.record_personal_access(
            session, referral, actor=_actor(client), now=node.now()
        )
    return shown


@blueprint.post(f"{REFERRALS_PATH}/<referral_id>/status")
@require_scope(WRITE)
def change_status(client: ApiClient, referral_id: str) -> dict[str, Any]:
    """Move the referral on as this node's side (SPEC 10); the peer is told."""
    body = load_body(StatusChangeSchema(), _json_body())
    reason = body.get("reason") or {}
    node = current_node()
    with node.database.session() as session:
        referral = referrals.update_status(
            node,
            session,
            _find(session, referral_id).referral_id,
            status=body["status"],
            reason_code=reason.get("code"),
            reason_text=reason.get("text"),
            note=body.get("note"),
            actor=_actor(client),
            now=node.now(),
        )
        changed = referrals.describe(node, referral, personal=False)
    node.notify_outbox()
    log.info("referral %s: %s by client %s", referral_id, changed["status"], client.client_id)
    return changed


@blueprint.post(f"{REFERRALS_PATH}/<referral_id>/withdrawal")
@require_scope(WRITE)
def withdraw_consent(client: ApiClient, referral_id: str) -> dict[str, Any]:
    """The person withdrew consent: tell the peer, purge this node's copy."""
    _empty_body()
    node = current_node()
    with node.database.session() as session:
        referral = referrals.withdraw(
            node,
            session,
            _find(session, referral_id).referral_id,
            actor=_actor(client),
            now=node.now(),
        )
        withdrawn = referrals.describe(node, referral, personal=False)
    node.notify_outbox()
    log.info("referral %s: consent withdrawn by client %s", referral_id, client.client_id)
    return withdrawn


@blueprint.get(f"{REFERRALS_PATH}/<referral_id>/consent-receipt")
@require_scope(READ)
def consent_receipt(client: ApiClient, referral_id: str) -> Response:
    """The person's consent receipt, as text or (``format=html``) a printable page."""
    chosen = _only_parameters({"format"}).get("format", "text")
    if chosen not in RECEIPT_FORMATS:
        raise InvalidRequestError(
            "the query parameter format is text or html", {"/query/format": "text or html"}
        )
    node = current_node()
    with node.database.session() as session:
        referral = _find(session, referral_id)
        receipt = consent.consent_receipt(
            node, session, referral, actor=_actor(client), now=node.now(), html=chosen == "html"
        )
    return Response(receipt, content_type=RECEIPT_FORMATS[chosen])


def _draft(body: dict[str, Any]) -> referrals.ReferralDraft:
    given = body["consent"]
    return referrals.ReferralDraft(
        peer=body["peer"],
        service_id=body["service_id"],
        person=body["person"],
        categories=tuple(given["data_categories"]),
        purpose=given["purpose"],
        given_by=given["given_by"],
        method=given["method"],
        captured_by=given["captured_by"],
        captured_at=given.get("captured_at"),
        expires_at=given["expires_at"],
        safe_contact=body["safe_contact"],
        override_reason=(body.get("override") or {}).get("reason"),
    )


def _find(session: Session, referral_id: str) -> Referral:
    """The referral whose id is exactly ``referral_id`` (no prefixes or receipt codes here)."""
    try:
        referral = referrals.find_referral(session, referral_id)
    except (InvalidRequestError, NotFoundError):
        referral = None
    if referral is None or referral.referral_id != referral_id:
        raise NotFoundError("this node holds no referral with this id")
    return referral


def _list_query() -> tuple[str | None, str | None, int]:
    query = _only_parameters(LIST_PARAMETERS)
    role, status = query.get("role") or None, query.get("status") or None
    problems = {}
    if role is not None and role not in ROLES:
        problems["/query/role"] = "sent or received"
    if status is not None and status not in STATUSES:
        problems["/query/status"] = f"one of {', '.join(STATUSES)}"
    raw_limit = query.get("limit") or str(DEFAULT_LIMIT)
    limit = int(raw_limit) if raw_limit.isascii() and raw_limit.isdigit() else 0
    if not 1 <= limit <= MAX_LIMIT:
        problems["/query/limit"] = f"an integer from 1 to {MAX_LIMIT}"
    if problems:
        first = next(iter(problems))
        raise InvalidRequestError(f"{first}: {problems[first]}", problems)
    return role, status, limit


def _only_parameters(known: frozenset[str] | set[str]) -> dict[str, str]:
    """The query parameters, each at most once and all known."""
    problems = {}
    for name in request.args:
        if name not in known:
            problems[f"/query/{name}"] = "unknown parameter"
        elif len(request.args.getlist(name)) > 1:
            problems[f"/query/{name}"] = "given more than once"
    if problems:
        raise InvalidRequestError(
            f"query parameters: {', '.join(problems)}; known: {', '.join(sorted(known))}",
            problems,
        )
    return request.args.to_dict()


def _json_body() -> Any:
    if not request.is_json:
        raise InvalidRequestError(
            "the body must be JSON, sent with Content-Type: application/json",
            {"": "not JSON"},
        )
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidRequestError("the body is not valid JSON", {"": "not JSON"})
    return body


def _empty_body() -> None:
    """A withdrawal takes no body: none, or an empty JSON object."""
    if not request.get_data() or (request.is_json and request.get_json(silent=True) == {}):
        return
    raise InvalidRequestError("a withdrawal takes no body (or {})", {"": "not empty"})


def _actor(client: ApiClient) -> str:
    """Who the audit log says acted: the integration client."""
    return f"api:{client.client_id}"
