"""The fold: state + updates -> state. One pure function shared by every adapter and by replay.

Compaction applies updates to a live Doc[Any] and takes `get_update()`: `merge_updates` over long runs is
quadratic and its output can be pathologically slow to load (see NOTES.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pycrdt import Doc

from engine.errors import InvalidUpdate
from engine.yupdate import scan

EMPTY_STATE = b"\x00\x00"


def _is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)) or type(exc).__name__ == "CancelledError"


def apply_update(doc: Doc[Any], update: bytes, *, scanned: bool = False) -> None:
    """Apply one Yjs v1 update to `doc` in its own transaction; raise InvalidUpdate if it does not decode.

    Unless the caller already `scan`ned it, the update is scanned first: the CRDT core would crash
    the process (not raise) on deeply nested values. States we compacted ourselves are loaded with
    `load_doc`, which skips the scan.
    """
    if not scanned:
        scan(update)
    _apply(doc, update)


def _apply(doc: Doc[Any], update: bytes) -> None:
    try:
        doc.apply_update(update)
    except BaseException as exc:  # pycrdt's Rust core can panic with a BaseException subclass
        if _is_fatal(exc):
            raise
        raise InvalidUpdate(f"invalid Yjs update: {exc}") from None


def fold_into(doc: Doc[Any], updates: Iterable[bytes]) -> Doc[Any]:
    """Apply `updates` to `doc` in order, one bounded transaction each, and return it."""
    for update in updates:
        apply_update(doc, update)
    return doc


def load_doc(state: bytes | None, updates: Iterable[bytes] = ()) -> Doc[Any]:
    """A new Doc[Any] holding `state` (a compacted update, may be None) with `updates` applied after it."""
    doc: Doc[Any] = Doc()
    if state:
        _apply(doc, state)  # a compacted state this system produced from validated updates
    return fold_into(doc, updates)


def fold(state: bytes | None, updates: Iterable[bytes]) -> bytes:
    """Compact `state` followed by `updates` into one Yjs update (the full state)."""
    return bytes(load_doc(state, updates).get_update())
