"""Projections of the event log: compacted documents, checkpoints and history queries.

Depends on `engine` only; `gateway` depends on it.
"""
