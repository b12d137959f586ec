"""``python -m exchange_node.cli``: the same as the ``exchange-node`` command."""

from exchange_node.cli import main

main()
