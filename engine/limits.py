"""Size limits applied to client input before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Configurable limits; defaults are documented in the README."""

    max_update_bytes: int = 2 * MiB  # one Yjs update (WebSocket frame or POST body)
    max_frame_bytes: int = 4 * MiB  # one WebSocket message of any type (y-websocket framing included)
    max_awareness_bytes: int = 64 * 1024  # one awareness message
    max_board_bytes: int = 256 * MiB  # approximate stored size of one board
