"""Voco: a voice coding assistant."""

__version__ = "0.1.0"
