"""``create_app``: the Flask application of one node.

Defaults come from the node's settings (home folder and ``EXCHANGE_*``
variables); tests pass a ready :class:`~exchange_node.node.Node` or a mapping
of Flask settings. There is no module-level app.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from exchange_node.node import Node
from exchange_node.settings import Settings, load_settings
from exchange_node.web import (
    api_directory,
    api_referrals,
    api_services,
    federation,
    health,
    hsds,
    inbox,
    oauth,
    problems,
    ui_admin,
    ui_auth,
    ui_dashboard,
    ui_directory,
    ui_i18n,
    ui_pages,
    ui_referrals,
    ui_services,
    ui_session,
)
from exchange_node.web.context import EXTENSION


def create_app(
    settings: Settings | None = None,
    *,
    node: Node | None = None,
    test_config: Mapping[str, Any] | None = None,
) -> Flask:
    """Build the app for the node in ``settings`` (or for ``node``, as tests do)."""
    if node is None:
        node = Node.open(settings or load_settings())
    app = Flask("exchange_node")
    app.config.update(
        MAX_CONTENT_LENGTH=node.settings.limits.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions[EXTENSION] = node
    if node.settings.trusted_proxies:
        # The client's address (sign-in throttle, logs) from X-Forwarded-For, as set by that
        # many proxies. URLs need no fixing: the node always names itself by settings.url.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=node.settings.trusted_proxies)  # type: ignore[method-assign]
    logging.getLogger("exchange_node").setLevel(node.settings.log_level)
    problems.init_app(app)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(federation.blueprint)
    app.register_blueprint(inbox.blueprint)
    app.register_blueprint(oauth.blueprint)
    app.register_blueprint(api_services.blueprint)
    app.register_blueprint(api_directory.blueprint)
    app.register_blueprint(api_referrals.blueprint)
    app.register_blueprint(hsds.blueprint)
    # The web app for people: server-rendered pages in English and Arabic.
    ui_session.init_app(app, node)
    ui_i18n.init_app(app)
    ui_pages.init_app(app)
    app.register_blueprint(ui_auth.blueprint)
    app.register_blueprint(ui_dashboard.blueprint)
    for area in (ui_referrals, ui_directory, ui_services, ui_admin):
        for blueprint in area.BLUEPRINTS:
            app.register_blueprint(blueprint)
    return app
