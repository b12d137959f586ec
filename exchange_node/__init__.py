"""exchange-node: a federated partnership and referral exchange."""

__version__ = "0.1.0.dev0"
