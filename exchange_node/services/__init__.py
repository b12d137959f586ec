"""Services: what the node does, called alike by the web app, the worker and the command line.

Each takes explicit arguments (a :class:`~exchange_node.node.Node`, a database
session, values) and never reads web-framework globals.
"""
