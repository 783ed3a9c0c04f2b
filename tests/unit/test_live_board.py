import pytest
from pycrdt import Doc, Map

from engine.errors import BoardTooLarge, InvalidUpdate, MissingDependencies, UpdateTooLarge
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


def test_trailing_garbage_is_rejected_and_nothing_applied() -> None:
    board = LiveBoard("b", Doc(), 0)
    with pytest.raises(InvalidUpdate, match="trailing bytes"):
        board.apply(_update("a", 1.0) + b"junk", Limits())
    assert board.doc.get("shapes", type=Map).to_py() == {}


def test_update_with_missing_dependency_is_refused_without_touching_the_doc() -> None:
    author = Doc()
    first = _update("a", 1.0, author)
    second = _update("b", 2.0, author)
    board = LiveBoard("b", Doc(), 0)
    with pytest.raises(MissingDependencies, match="does not have"):
        board.apply(second, Limits())  # depends on `first`: applying it would leave pending content
    assert board.state() == b"\x00\x00"
    assert board.apply(first, Limits()) is not None
    delta = board.apply(second, Limits())
    assert delta is not None
    assert load_doc(delta).get("shapes", type=Map).to_py() == {"b": 2.0}


def test_deeply_nested_values_are_refused_before_the_crdt_core_sees_them() -> None:
    # An Any array nested 100,000 deep under shapes["q"]: the Rust core would overflow its stack.
    nested = b"\x75\x01" * 100_000 + b"\x7e"
    root_item = b"\x01\x01\x07\x00" + b"\x28\x01\x06shapes\x01q" + b"\x01" + nested + b"\x00"
    board = LiveBoard("b", Doc(), 0)
    with pytest.raises(InvalidUpdate, match="nested deeper"):
        board.apply(root_item, Limits())


def test_limits_and_invalid_input() -> None:
    board = LiveBoard("b", Doc(), 0)
    with pytest.raises(UpdateTooLarge):
        board.apply(_update("a", "x" * 200), Limits(max_update_bytes=100))
    with pytest.raises(BoardTooLarge):
        board.apply(_update("a", "x" * 200), Limits(max_board_bytes=100))
    with pytest.raises(InvalidUpdate):
        board.apply(b"\x01\x02\x03", Limits())
    assert board.doc.get("shapes", type=Map).to_py() == {}


def test_cached_state_vector_follows_every_kind_of_change() -> None:
    """`apply` keeps the decoded state vector between updates; it must always equal the Doc's, whether
    the Doc changed through `apply`, `integrate` (another node's update) or a local transaction."""
    import random

    from pycrdt import Array, Text

    from engine.yupdate import decode_state_vector

    rng = random.Random(7)
    board = LiveBoard("b", Doc(), 0)
    peers = [Doc() for _ in range(4)]
    for step in range(400):
        peer = rng.choice(peers)
        before = peer.get_state()
        with peer.transaction():
            kind = rng.randrange(3)
            if kind == 0:
                peer.get("m", type=Map)[f"k{rng.randrange(20)}"] = step
            elif kind == 1:
                peer.get("t", type=Text).insert(0, "ab")
            else:
                array = peer.get("a", type=Array)
                if len(array) and rng.random() < 0.3:
                    del array[0]
                else:
                    array.append(step)
        update = peer.get_update(before)
        route = rng.random()
        if route < 0.7:
            board.apply(update, Limits())
        elif route < 0.9:
            board.integrate(update)
        else:
            board.integrate(update)
            board.doc.get("m", type=Map)[f"local{step}"] = step  # a change made on the board itself
        for other in peers:  # every peer catches up with the board, so their next updates apply
            other.apply_update(board.state(other.get_state()))
        assert (board._sv is None) or board._sv == decode_state_vector(board.state_vector()), step
