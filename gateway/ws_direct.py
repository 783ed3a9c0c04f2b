"""Uvicorn's sans-I/O WebSocket protocol with a direct lane to the y-websocket endpoint.

Through ASGI, every frame a gateway sends is a coroutine through Starlette and Uvicorn (a wait on
the socket being writable, a `websockets` Frame object, serialisation), and every frame it receives
is a dict put on a queue that wakes the endpoint's task one event-loop iteration later. At 20
boards x 5 clients x 10 updates/s that was a fifth of a gateway's CPU, and the hop put every update
behind everything else ready in that iteration (benchmarks/RESULTS.md, "Direct lane").

The lane, offered to the endpoint as `scope["extensions"][DIRECT_LANE]`, skips both where it can:

- `write(data)` writes one binary frame to the socket now, if the connection is open and its
  buffer is not full; otherwise it returns False and the caller uses the ASGI send, which waits.
- `deliver_to(handler)` hands each complete binary message to `handler(data)` from the protocol's
  `data_received`, as long as nothing is queued for the endpoint's `receive()` ahead of it; a
  handler that returns False (the message needs to wait for something) sends that message, and
  everything after it until the queue is empty again, the ASGI way, in order; so do the messages
  of one read beyond MESSAGES_PER_TURN. The lane cannot see when the endpoint has finished with a
  message it took from `receive()`: until then the handler itself declines, or a message could
  overtake it.

Everything else -- the handshake, pings, fragmented messages, the closing handshake, limits -- is
still the `websockets` protocol's. Without this protocol (a test client, another ASGI server) the
extension is absent and the endpoint uses plain ASGI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

DIRECT_LANE = "inkstream.direct_lane"

#: How many of one client's messages are handled before other connections get the event loop: the
#: lane hands at most this many of one read to the handler and queues the rest for `receive()`, and
#: the endpoint's receive loop yields after every this many it takes from the queue (which does not
#: suspend while messages wait). A read holds up to 256 KiB, thousands of small updates: without a
#: turn, one client's burst kept every other connection waiting until all of it was handled.
MESSAGES_PER_TURN = 32

_BINARY = 0x82  # FIN + opcode 2; a server's frames are not masked


def binary_frame_header(length: int) -> bytes:
    """The header of one unfragmented, unmasked binary frame of `length` payload bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((_BINARY, length))
    if length < 65536:
        return bytes((_BINARY, 126)) + length.to_bytes(2, "big")
    return bytes((_BINARY, 127)) + length.to_bytes(8, "big")


class DirectLane:
    """One connection's direct lane (see the module docstring)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: InkstreamWebSocketProtocol) -> None:
        self._protocol = protocol

    def write(self, data: bytes) -> bool:
        """Write `data` as one binary frame now; False if it must go the ASGI way (not open, or the
        socket's buffer is full and the sender has to wait for it to drain)."""
        return self._protocol.write_binary(data)

    def deliver_to(self, handler: Callable[[bytes], bool] | None) -> None:
        """Hand binary messages to `handler` (None: stop; everything goes to `receive()` again)."""
        self._protocol.direct_handler = handler


class InkstreamWebSocketProtocol(WebSocketsSansIOProtocol):
    """`websockets-sansio` plus the direct lane; used by every Inkstream HTTP process (gateway/server.py)."""

    direct_handler: Callable[[bytes], bool] | None = None
    _direct_budget = MESSAGES_PER_TURN

    def data_received(self, data: bytes) -> None:
        self._direct_budget = MESSAGES_PER_TURN
        super().data_received(data)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None and not self.conn.extensions:  # our frames carry no extension bits
            scope["extensions"][DIRECT_LANE] = DirectLane(self)

    def write_binary(self, data: bytes) -> bool:
        if (
            not self.handshake_complete
            or self.close_sent
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        if len(data) < 4096:
            self.transport.write(binary_frame_header(len(data)) + data)
        else:  # no copy of a big payload
            self.transport.writelines((binary_frame_header(len(data)), data))
        return True

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:  # Uvicorn would log it with a traceback; it is the client's fault
                self.frames = []
                self.conn.send_close(1007, "text message is not valid UTF-8")
                self.handle_parser_exception()  # sends the close, tells the app, closes the transport
                return
        handler = self.direct_handler
        if (
            handler is not None
            and self.curr_msg_data_type == "bytes"
            and not self.close_sent
            and self.queue.empty()  # nothing ahead of this message on the ASGI road: order is kept
            and self._direct_budget > 0
        ):
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            if handler(data):
                self._direct_budget -= 1
                self.frames = []
                return
        super().send_receive_event_to_app()
