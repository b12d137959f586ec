"""The node's HTTP interface: an app factory and one blueprint per area."""

from exchange_node.web.app import create_app

__all__ = ["create_app"]
