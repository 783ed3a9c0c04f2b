"""A board held in memory: its Doc and version, and the one place client updates are applied."""

from __future__ import annotations

import asyncio
from typing import Any

from pycrdt import Doc, TransactionEvent

from engine.errors import BoardTooLarge, InvalidUpdate, MissingDependencies, UpdateTooLarge
from engine.fold import apply_update
from engine.limits import Limits
from engine.model import meta_map, render_body_json, shapes_map
from engine.yupdate import decode_state_vector, scan


class LiveBoard:
    """The live Doc of one board. `apply` returns the effective change, which is what the log stores.

    Storing the effective delta (what the Doc integrated) rather than the raw bytes means duplicates
    are never logged, trailing garbage never reaches the log, and an update whose dependencies arrive
    later is logged when it integrates, so replaying the log always reproduces this Doc.
    """

    def __init__(self, board_id: str, doc: Doc[Any], version: int, state_bytes: int = 0) -> None:
        self.board_id = board_id
        self.doc = doc
        self.version = version  # latest version in the log that this Doc includes
        self.approx_bytes = state_bytes
        self._deltas: list[bytes] = []
        self._sv: dict[int, int] | None = None  # decoded state vector, kept while only `apply` changes the Doc
        #: Bumped by every transaction that changes the Doc: what a cached rendering is keyed on.
        self.revision = 0
        self._rendered: tuple[int, bytes] | None = None  # (revision, engine.model.render_body at it)
        self._subscription: Any = doc.observe(self._on_transaction)

    def _on_transaction(self, event: TransactionEvent) -> None:
        update = bytes(event.update)
        self._deltas.append(update)
        self._sv = None  # any transaction may change it; `apply` restores it from what it integrated
        if update != b"\x00\x00":  # an empty update changed nothing
            self.revision += 1
            self._rendered = None  # free it at once: the next read renders anew

    def cached_body(self) -> bytes | None:
        """`engine.model.render_body` of the Doc if it was rendered since the Doc last changed."""
        cached = self._rendered
        return cached[1] if cached is not None and cached[0] == self.revision else None

    def read_for_render(self) -> tuple[int, str, str]:
        """What `render` needs, read from the Doc now: (revision, `meta` JSON, `shapes` JSON)."""
        return self.revision, str(meta_map(self.doc)), str(shapes_map(self.doc))

    async def render(self, reading: tuple[int, str, str]) -> bytes:
        """`engine.model.render_body` of the Doc as `read_for_render` found it, in a worker thread (for a
        5,000-shape board ~100 ms of Python the event loop would otherwise wait for; it gets the GIL
        back every switch interval); cached until the Doc changes."""
        revision, meta_text, shapes_text = reading
        body = await asyncio.to_thread(render_body_json, meta_text, shapes_text)
        if self.revision == revision:
            self._rendered = (revision, body)
        return body

    def apply(self, update: bytes, limits: Limits) -> bytes | None:
        """Validate and apply a client update; return the delta to log, or None if it changed nothing."""
        if len(update) > limits.max_update_bytes:
            raise UpdateTooLarge(f"update is {len(update)} bytes; the limit is {limits.max_update_bytes}")
        if self.approx_bytes + len(update) > limits.max_board_bytes:
            raise BoardTooLarge(f"board {self.board_id} would exceed {limits.max_board_bytes} bytes")
        sv = self._sv if self._sv is not None else decode_state_vector(self.state_vector())
        scanned = scan(update)
        missing = scanned.missing(sv)
        if missing is not None:
            # Applying it would leave content in the Doc that the log cannot have (pending structs).
            raise MissingDependencies(f"update builds on changes this board does not have ({missing}); resync")
        delta = self.integrate(update, scanned=True)
        # Nothing was missing, so every struct range integrated: the state vector now ends where they do
        # (encoding and decoding it from the Doc on every update was ~10 % of applying one).
        for client, (_first, end) in scanned.ranges.items():
            if end > sv.get(client, 0):
                sv[client] = end
        self._sv = sv
        return delta

    def integrate(self, update: bytes, *, scanned: bool = False) -> bytes | None:
        """Apply an update without client limits (e.g. one another node accepted); return the delta."""
        self._deltas.clear()
        apply_update(self.doc, update, scanned=scanned)
        deltas, self._deltas = self._deltas, []
        if not deltas:
            return None
        if len(deltas) != 1:  # one apply_update is one transaction; anything else is a pycrdt change
            raise InvalidUpdate(f"update produced {len(deltas)} transactions")
        delta = deltas[0]
        if delta == b"\x00\x00":
            return None
        self.approx_bytes += len(delta)
        return delta

    def state(self, state_vector: bytes | None = None) -> bytes:
        """The full state as one update, or only what a peer with `state_vector` is missing."""
        if state_vector is None:
            return bytes(self.doc.get_update())
        return bytes(self.doc.get_update(state_vector))

    def state_vector(self) -> bytes:
        """This board's Yjs state vector."""
        return bytes(self.doc.get_state())

    def close(self) -> None:
        """Stop observing the Doc."""
        self.doc.unobserve(self._subscription)
