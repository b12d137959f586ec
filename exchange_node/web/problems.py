"""Every error leaves as RFC 9457 problem details with a stable code.

Protocol errors and node errors carry their own code and status; HTTP errors
raised by Flask (404, 405, 413 …) get codes of their own; anything unexpected
becomes a bare 500 ``internal_error`` that reveals nothing.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

from exchange_node.errors import ExchangeError
from exchange_node.protocol.errors import PROBLEM_CONTENT_TYPE, ProtocolError, problem_details

log = logging.getLogger("exchange_node.web")

#: HTTP statuses Flask raises itself -> stable problem codes.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def problem_response(problem: dict[str, object], status: int) -> Response:
    """The problem document as SPEC 12.1 serves it: problem+json, never cached."""
    response = Response(json.dumps(problem), status=status, content_type=PROBLEM_CONTENT_TYPE)
    response.cache_control.no_store = True
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(ProtocolError)
    @app.errorhandler(ExchangeError)
    def known_error(error: ProtocolError | ExchangeError) -> Response:
        log.info("refused %s %s: %s", request.method, request.path, error.code)
        problem = error.to_problem(request.path)
        if error.status >= 500:  # the node's own trouble: name it, but reveal no details
            log.error("%s on %s %s: %s", error.code, request.method, request.path, error.detail)
            problem["detail"] = "the node cannot handle this request now; its logs say why"
            problem.pop("errors", None)
        return problem_response(problem, error.status)

    app.register_error_handler(HTTPException, http_problem)


def http_problem(error: HTTPException) -> Response:
    """An HTTP error raised by Flask or a view, as problem details with its stable code."""
    status = error.code or 500
    code = HTTP_CODES.get(status, "http_error")
    detail = error.description or ""
    if status == 413:
        detail = f"the request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    if status >= 500:
        log.error("internal error on %s %s", request.method, request.path)
        detail = "the node could not handle this request"
    problem = problem_details(code, error.name, status, detail, request.path)
    response = problem_response(problem, status)
    for name, value in error.get_headers():  # Allow on a 405, Retry-After on a 429
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response
