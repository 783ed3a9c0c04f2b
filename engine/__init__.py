"""Inkstream engine: the board model, update validation, the event model, ports, the fold and adapters.

The engine imports neither `projections` nor `gateway`.
"""
