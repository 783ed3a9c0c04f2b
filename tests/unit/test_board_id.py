import pytest

from engine.board_id import validate_board_id
from engine.errors import InvalidBoardId


@pytest.mark.parametrize("board_id", ["a", "Board-1", "x_y.z~w", "A" * 128, "0"])
def test_valid_ids_pass_unchanged(board_id: str) -> None:
    assert validate_board_id(board_id) == board_id


@pytest.mark.parametrize(
    ("board_id", "reason"),
    [
        ("", "empty"),
        ("A" * 129, "at most 128"),
        ("a/b", "only letters"),
        ("a b", "only letters"),
        ("bö", "only letters"),
        ("a%20", "only letters"),
        ("..", "'.' or '..'"),
        ("a\n", "only letters"),
    ],
)
def test_invalid_ids_are_rejected_with_a_reason(board_id: str, reason: str) -> None:
    with pytest.raises(InvalidBoardId, match=reason):
        validate_board_id(board_id)
