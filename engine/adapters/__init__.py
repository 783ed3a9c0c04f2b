"""Adapters behind the engine's ports."""
