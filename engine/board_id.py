"""Board identifiers: 1-128 characters from letters, digits, '-', '_', '.', '~'."""

from __future__ import annotations

import re

from engine.errors import InvalidBoardId

MAX_BOARD_ID_LENGTH = 128
_BOARD_ID = re.compile(r"[A-Za-z0-9_.~-]{1,128}")


def validate_board_id(board_id: str) -> str:
    """Return `board_id` unchanged if it is valid, else raise InvalidBoardId with the reason."""
    if not board_id:
        raise InvalidBoardId("board id is empty")
    if len(board_id) > MAX_BOARD_ID_LENGTH:
        raise InvalidBoardId(f"board id is {len(board_id)} characters; at most {MAX_BOARD_ID_LENGTH} allowed")
    if not _BOARD_ID.fullmatch(board_id):
        raise InvalidBoardId("board id may contain only letters, digits, '-', '_', '.' and '~'")
    if board_id in (".", ".."):
        raise InvalidBoardId("board id may not be '.' or '..'")
    return board_id
