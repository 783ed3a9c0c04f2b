import random

import pytest
from pycrdt import Array, Doc, Map, Text

from engine.errors import InvalidUpdate
from engine.fold import EMPTY_STATE, apply_update, fold, load_doc


def _edits(n: int, seed: int = 1) -> list[bytes]:
    """n small updates from one client, captured as they happen."""
    rng = random.Random(seed)
    doc: Doc = Doc()
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(bytes(e.update)))
    shapes = doc.get("shapes", type=Map)
    items = doc.get("items", type=Array)
    text = doc.get("text", type=Text)
    for i in range(n):
        choice = rng.randrange(3)
        if choice == 0:
            shapes[f"s{rng.randrange(20)}"] = Map({"type": "rect", "x": float(i)})
        elif choice == 1:
            items.append(i)
        else:
            text.insert(rng.randrange(len(text) + 1), "ab")
    return updates


def _content(state: bytes) -> tuple[object, object, str]:
    doc = load_doc(state)
    return (
        doc.get("shapes", type=Map).to_py(),
        doc.get("items", type=Array).to_py(),
        str(doc.get("text", type=Text)),
    )


def test_fold_equals_applying_every_update() -> None:
    updates = _edits(300)
    direct: Doc = Doc()
    for u in updates:
        direct.apply_update(u)
    assert _content(fold(None, updates)) == _content(bytes(direct.get_update()))


def test_fold_is_incremental() -> None:
    updates = _edits(200)
    assert _content(fold(fold(None, updates[:120]), updates[120:])) == _content(fold(None, updates))


def test_fold_is_idempotent_on_redelivery() -> None:
    updates = _edits(100)
    assert _content(fold(None, updates + updates[10:50])) == _content(fold(None, updates))


def test_fold_of_nothing_is_the_empty_state() -> None:
    assert fold(None, []) == EMPTY_STATE


def test_invalid_update_raises() -> None:
    with pytest.raises(InvalidUpdate):
        apply_update(Doc(), b"\x05garbage")
