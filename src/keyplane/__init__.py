"""Keyplane: a self-hostable control plane for API keys."""

__version__ = "0.1.0"
