import pytest
from pycrdt import Doc, Map

from engine.errors import BoardTooLarge, InvalidUpdate, UpdateTooLarge
from engine.fold import load_doc
from engine.limits import Limits
from engine.live_board import LiveBoard


def _update(key: str, value: object, doc: Doc | None = None) -> bytes:
    doc = doc or Doc()
    before = doc.get_state()
    doc.get("shapes", type=Map)[key] = value
    return bytes(doc.get_update(before))


def test_apply_returns_the_effective_delta_once() -> None:
    board = LiveBoard("b", Doc(), 0)
    update = _update("a", 1.0)
    delta = board.apply(update, Limits())
    assert delta is not None
    assert load_doc(delta).get("shapes", type=Map).to_py() == {"a": 1.0}
    assert board.apply(update, Limits()) is None  # a duplicate changes nothing: nothing to log


def test_trailing_garbage_never_reaches_the_delta() -> None:
    board = LiveBoard("b", Doc(), 0)
    update = _update("a", 1.0)
    delta = board.apply(update + b"junk", Limits())
    assert delta is not None and not delta.endswith(b"junk")


def test_update_with_missing_dependency_is_logged_when_it_integrates() -> None:
    author = Doc()
    first = _update("a", 1.0, author)
    second = _update("b", 2.0, author)
    board = LiveBoard("b", Doc(), 0)
    assert board.apply(second, Limits()) is None  # pending: depends on `first`
    delta = board.apply(first, Limits())
    assert delta is not None
    assert load_doc(delta).get("shapes", type=Map).to_py() == {"a": 1.0, "b": 2.0}


def test_limits_and_invalid_input() -> None:
    board = LiveBoard("b", Doc(), 0)
    with pytest.raises(UpdateTooLarge):
        board.apply(_update("a", "x" * 200), Limits(max_update_bytes=100))
    with pytest.raises(BoardTooLarge):
        board.apply(_update("a", "x" * 200), Limits(max_board_bytes=100))
    with pytest.raises(InvalidUpdate):
        board.apply(b"\x01\x02\x03", Limits())
    assert board.doc.get("shapes", type=Map).to_py() == {}
