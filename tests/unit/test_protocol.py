import pytest

from gateway import protocol
from gateway.protocol import ProtocolError, decode


def test_varuint_roundtrip() -> None:
    for value in [0, 1, 127, 128, 300, 2**21, 2**35 + 7]:
        frame = bytes([protocol.MSG_SYNC, protocol.SYNC_UPDATE]) + protocol.write_bytes(b"x" * (value % 50))
        assert decode(frame) == protocol.SyncMessage(protocol.SYNC_UPDATE, b"x" * (value % 50))
        assert protocol._Reader(protocol.write_uint(value)).uint() == value


def test_sync_messages_roundtrip() -> None:
    assert decode(protocol.sync_step1(b"\x01\x02")) == protocol.SyncMessage(protocol.SYNC_STEP1, b"\x01\x02")
    assert decode(protocol.sync_step2(b"abc")) == protocol.SyncMessage(protocol.SYNC_STEP2, b"abc")
    assert decode(protocol.sync_update(b"")) == protocol.SyncMessage(protocol.SYNC_UPDATE, b"")


def test_awareness_roundtrip_keeps_raw_frame() -> None:
    frame = protocol.awareness([(7, 3, {"user": {"name": "ann"}}), (9, 1, None)])
    message = decode(frame)
    assert isinstance(message, protocol.AwarenessMessage)
    assert message.raw == frame
    assert message.entries == [(7, 3, {"user": {"name": "ann"}}), (9, 1, None)]


def test_query_awareness_and_auth() -> None:
    assert decode(bytes([protocol.MSG_QUERY_AWARENESS])) == protocol.OtherMessage(protocol.MSG_QUERY_AWARENESS)
    assert decode(bytes([protocol.MSG_AUTH, 0])) == protocol.OtherMessage(protocol.MSG_AUTH)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "empty frame"),
        (b"\x09", "unknown message type 9"),
        (b"\x00\x05\x00", "unknown sync message type 5"),
        (b"\x00\x02\x05ab", "exceeds the frame"),
        (b"\x00\x02\x01ab", "trailing bytes"),
        (b"\x00\x02", "truncated varint"),
        (b"\x00\x02" + b"\xff" * 12, "varint too long"),
        (b"\x01\x04\x01\x01\x01\x05", "exceeds the frame"),
        (b"\x01\x05\x01\x01\x01\x01{", "not JSON"),
        (b"\x01\x05\x01\x01\x01\x01\xff", "UTF-8"),
        (b"\x03\x00", "trailing bytes"),
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode(frame)
