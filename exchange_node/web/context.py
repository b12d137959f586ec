"""The node behind the current request, for views only (services take it as an argument)."""

from __future__ import annotations

from flask import current_app

from exchange_node.node import Node

EXTENSION = "exchange_node"


def current_node() -> Node:
    node: Node = current_app.extensions[EXTENSION]
    return node
