"""A strict, bounded scan of Yjs v1 updates, before the CRDT core sees them.

Why our own scan, when pycrdt decodes updates: the Rust core decodes nested values recursively,
so a 200 KB update holding an array nested 100,000 deep overflows its stack and kills the whole
process (a segfault, not an exception); and an update whose dependencies the board does not have
is kept pending inside the Doc, visible to readers but absent from the log. This scan walks the
encoding once, iteratively except for nested values (depth-limited), and reports what the update
covers and what it depends on, so such updates are rejected before they are applied.

Encoding (lib0 / Yjs v1): structs grouped by client, then a delete set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import InvalidUpdate

#: Deepest nesting of JSON-like values (lib0 "Any") accepted in an update.
MAX_ANY_DEPTH = 64

_BIT8 = 0x80  # has origin
_BIT7 = 0x40  # has right origin
_BIT6 = 0x20  # has parentSub
_CONTENT_GC = 0
_CONTENT_SKIP = 10


@dataclass(slots=True)
class ScannedUpdate:
    """What an update covers and what it depends on."""

    #: client -> (first clock, end clock) of the contiguous structs the update carries (up to a skip).
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: clients whose structs continue after a skip (a gap inside the update itself).
    gapped: set[int] = field(default_factory=set)
    #: IDs (client, clock) the update's items refer to: origins and parents.
    refs: list[tuple[int, int]] = field(default_factory=list)
    #: delete-set ranges (client, clock, length).
    deletes: list[tuple[int, int, int]] = field(default_factory=list)

    def missing(self, state_vector: dict[int, int]) -> str | None:
        """Why the update cannot be fully integrated on a Doc with `state_vector`, or None if it can."""
        available = dict(state_vector)
        for client, (first, end) in self.ranges.items():
            known = state_vector.get(client, 0)
            if first > known:
                return f"client {client} starts at clock {first} but the board has only {known}"
            available[client] = max(known, end)
        for client in self.gapped:
            return f"client {client} has a gap inside the update"
        for client, clock in self.refs:
            if clock >= available.get(client, 0):
                return f"refers to {client}:{clock}, which the board does not have"
        for client, clock, length in self.deletes:
            if length and clock + length > available.get(client, 0):
                return f"deletes {client}:{clock}+{length}, which the board does not have"
        return None


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def fail(self, what: str) -> InvalidUpdate:
        return InvalidUpdate(f"invalid Yjs update: {what} at byte {self.pos}")

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uint(self) -> int:
        pos = self.pos
        if pos < self.end:  # fast path: most numbers fit in one byte
            byte = self.data[pos]
            if byte < 0x80:
                self.pos = pos + 1
                return byte
        data, end = self.data, self.end
        result = 0
        shift = 0
        while True:
            if pos >= end:
                self.pos = pos
                raise self.fail("truncated number")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return result
            shift += 7
            if shift > 70:
                self.pos = pos
                raise self.fail("number too long")

    def skip(self, length: int) -> None:
        if length > self.end - self.pos:
            raise self.fail(f"length {length} past the end")
        self.pos += length

    def skip_bytes(self) -> None:
        self.skip(self.uint())

    def string(self) -> str:
        length = self.uint()
        start = self.pos
        self.skip(length)
        try:
            return self.data[start : self.pos].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("string is not UTF-8") from None

    def any(self, depth: int) -> None:
        """Skip one lib0 Any value, refusing nesting deeper than MAX_ANY_DEPTH.

        Iterative with inlined number decoding: a board's full state holds hundreds of thousands of
        values (stroke points), and a call per value would cost more than applying the update.
        """
        data, pos, end = self.data, self.pos, self.end
        stack: list[tuple[int, bool]] = []
        pending, in_object = 1, False
        try:
            while True:
                if pending == 0:
                    if not stack:
                        break
                    pending, in_object = stack.pop()
                    continue
                pending -= 1
                if in_object:  # skip the key: varUint length + bytes
                    length = shift = 0
                    while True:
                        b = data[pos]
                        pos += 1
                        length |= (b & 0x7F) << shift
                        if b < 0x80:
                            break
                        shift += 7
                    pos += length
                kind = data[pos]
                pos += 1
                if kind == 123 or kind == 122:  # float64, bigint64
                    pos += 8
                elif kind >= 126 or kind == 121 or kind == 120:  # undefined, null, false, true
                    pass
                elif kind == 125:  # varint
                    while data[pos] >= 0x80:
                        pos += 1
                    pos += 1
                elif kind == 124:  # float32
                    pos += 4
                elif kind == 119 or kind == 116:  # string, Uint8Array
                    length = shift = 0
                    while True:
                        b = data[pos]
                        pos += 1
                        length |= (b & 0x7F) << shift
                        if b < 0x80:
                            break
                        shift += 7
                    pos += length
                elif kind == 118 or kind == 117:  # object, array
                    if depth + len(stack) >= MAX_ANY_DEPTH:
                        self.pos = pos
                        raise self.fail(f"values nested deeper than {MAX_ANY_DEPTH}")
                    count = shift = 0
                    while True:
                        b = data[pos]
                        pos += 1
                        count |= (b & 0x7F) << shift
                        if b < 0x80:
                            break
                        shift += 7
                    if count > end - pos:
                        self.pos = pos
                        raise self.fail(f"{count} entries past the end")
                    stack.append((pending, in_object))
                    pending, in_object = count, kind == 118
                else:
                    self.pos = pos
                    raise self.fail(f"unknown value type {kind}")
                if pos > end:
                    break
        except IndexError:
            pos = end + 1
        if pos > end:
            self.pos = end
            raise self.fail("unexpected end")
        self.pos = pos


def _content(reader: _Reader, ref: int) -> int:
    """Skip an item's content; return its length in clock units."""
    if ref == 1:  # deleted
        return reader.uint()
    if ref == 2:  # JSON strings (parsed by serde_json, which limits its own depth)
        count = reader.uint()
        for _ in range(count):
            reader.skip_bytes()
        return count
    if ref == 3:  # binary
        reader.skip_bytes()
        return 1
    if ref == 4:  # string: length in UTF-16 code units
        text = reader.string()
        return len(text.encode("utf-16-le")) // 2
    if ref == 5:  # embed
        reader.skip_bytes()
        return 1
    if ref == 6:  # format
        reader.skip_bytes()
        reader.skip_bytes()
        return 1
    if ref == 7:  # type
        type_ref = reader.uint()
        if type_ref in (3, 5):  # XmlElement, XmlHook carry a name
            reader.skip_bytes()
        elif type_ref > 6:
            raise reader.fail(f"unknown type ref {type_ref}")
        return 1
    if ref == 8:  # any
        count = reader.uint()
        if count > reader.end - reader.pos:
            raise reader.fail(f"{count} values past the end")
        for _ in range(count):
            reader.any(1)
        return count
    if ref == 9:  # sub-document: guid + options
        reader.skip_bytes()
        reader.any(1)
        return 1
    raise reader.fail(f"unknown content type {ref}")


def scan(update: bytes) -> ScannedUpdate:
    """Scan a Yjs v1 update; raise InvalidUpdate if it is malformed or nested too deeply."""
    reader = _Reader(update)
    result = ScannedUpdate()
    refs = result.refs
    for _ in range(reader.uint()):
        structs = reader.uint()
        client = reader.uint()
        clock = reader.uint()
        if structs > reader.end - reader.pos:
            raise reader.fail(f"{structs} structs past the end")
        first = clock
        end: int | None = None
        for _ in range(structs):
            info = reader.byte()
            ref = info & 0x1F
            if ref == _CONTENT_GC:
                clock += reader.uint()
                continue
            if ref == _CONTENT_SKIP:
                length = reader.uint()
                if end is None:
                    end = clock
                clock += length
                continue
            if end is not None:
                result.gapped.add(client)
            if info & _BIT8:
                refs.append((reader.uint(), reader.uint()))
            if info & _BIT7:
                refs.append((reader.uint(), reader.uint()))
            if not info & (_BIT8 | _BIT7):
                if reader.uint() == 1:
                    reader.skip_bytes()  # root type name
                else:
                    refs.append((reader.uint(), reader.uint()))  # parent item
                if info & _BIT6:
                    reader.skip_bytes()  # parentSub
            clock += _content(reader, ref)
        if structs:
            previous = result.ranges.get(client)
            stop = clock if end is None else end
            if previous is not None:
                raise reader.fail(f"client {client} appears twice")
            result.ranges[client] = (first, stop)
    for _ in range(reader.uint()):
        client = reader.uint()
        for _ in range(reader.uint()):
            result.deletes.append((client, reader.uint(), reader.uint()))
    if reader.pos != reader.end:
        raise reader.fail(f"{reader.end - reader.pos} trailing bytes")
    return result


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """A Yjs state vector as {client: clock}."""
    reader = _Reader(state_vector)
    return {reader.uint(): reader.uint() for _ in range(reader.uint())}
