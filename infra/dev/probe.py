#!/usr/bin/env python3
"""Readiness probes for the local dev servers, speaking each server's own protocol.

Standard library only: `infra/dev/up` runs it on a fresh machine before any
project dependency is installed.  Usage: probe.py SERVICE HOST PORT; exit 0 when
the server answers correctly, 1 otherwise (reason on stderr).
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import urllib.request

TIMEOUT_S = 2.0


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf


def probe_kafka(host: str, port: int) -> None:
    """Metadata v4 request; ready once the broker lists itself (KRaft registration done)."""
    client_id = b"inkstream-probe"
    header = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id
    body = struct.pack(">i?", -1, False)  # topics = null (none listed), no auto-create
    req = header + body
    with socket.create_connection((host, port), TIMEOUT_S) as s:
        s.settimeout(TIMEOUT_S)
        s.sendall(struct.pack(">i", len(req)) + req)
        (size,) = struct.unpack(">i", _recv_exact(s, 4))
        resp = _recv_exact(s, size)
    # correlation_id int32, throttle_time_ms int32, brokers array int32 count
    _corr, _throttle, n_brokers = struct.unpack(">iii", resp[:12])
    if n_brokers < 1:
        raise RuntimeError("broker has not registered with the controller yet")


def probe_redis(host: str, port: int) -> None:
    """PING -> +PONG."""
    with socket.create_connection((host, port), TIMEOUT_S) as s:
        s.settimeout(TIMEOUT_S)
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = s.recv(64)
    if not reply.startswith(b"+PONG"):
        raise RuntimeError(f"unexpected reply {reply!r}")  # e.g. -LOADING while replaying the AOF


def _bson_hello() -> bytes:
    elems = b"\x10hello\x00" + struct.pack("<i", 1)
    db = b"admin\x00"
    elems += b"\x02$db\x00" + struct.pack("<i", len(db)) + db
    return struct.pack("<i", 4 + len(elems) + 1) + elems + b"\x00"


def probe_mongo(host: str, port: int) -> None:
    """OP_MSG {hello: 1} -> a reply document with ok: 1."""
    payload = struct.pack("<I", 0) + b"\x00" + _bson_hello()
    msg = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
    with socket.create_connection((host, port), TIMEOUT_S) as s:
        s.settimeout(TIMEOUT_S)
        s.sendall(msg)
        (length,) = struct.unpack("<i", _recv_exact(s, 4))
        reply = _recv_exact(s, length - 4)
    ok_double = b"\x01ok\x00" + struct.pack("<d", 1.0)
    ok_int = b"\x10ok\x00" + struct.pack("<i", 1)
    if ok_double not in reply and ok_int not in reply:
        raise RuntimeError("hello did not return ok: 1")


def probe_etcd(host: str, port: int) -> None:
    """GET /health -> {"health": "true"} (a leader is elected)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via $http_proxy
    with direct.open(f"http://{host}:{port}/health", timeout=TIMEOUT_S) as r:
        health = json.load(r)
    if health.get("health") != "true":
        raise RuntimeError(f"unhealthy: {health}")


PROBES = {"kafka": probe_kafka, "redis": probe_redis, "mongo": probe_mongo, "etcd": probe_etcd}


def main(argv: list[str]) -> int:
    """Entry point: probe.py SERVICE HOST PORT."""
    if len(argv) != 4 or argv[1] not in PROBES:
        print(f"usage: {argv[0]} {{{'|'.join(PROBES)}}} HOST PORT", file=sys.stderr)
        return 2
    try:
        PROBES[argv[1]](argv[2], int(argv[3]))
    except (OSError, RuntimeError, ValueError, struct.error) as exc:
        print(f"{argv[1]} not ready: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
