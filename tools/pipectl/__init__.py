"""pipectl: policy, promotion and console tooling for the stonks-oracle pipeline."""

__version__ = "0.1.0"
