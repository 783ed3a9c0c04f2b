"""Gateway membership in a real etcd: /api/cluster follows registrations, revocations and expiries;
/api/route picks the rendezvous winner over the live members."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aetcd
import httpx
import pytest

from engine.adapters.etcd_membership import EtcdMembership, parse_etcd_url
from engine.routing import Member, preferred
from gateway.app import create_app
from gateway.settings import Settings
from gateway.system import build_embedded
from tests.conftest import eventually, unique
from tests.servers import ensure_servers

pytestmark = pytest.mark.integration


def member(name: str) -> Member:
    return Member(id=name, url=f"http://127.0.0.1/{name}", started=time.time())


@pytest.fixture
def etcd_url() -> str:
    return ensure_servers("etcd")["INKSTREAM_ETCD_URL"]


@pytest.fixture
async def gateway(tmp_path: Path, etcd_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An embedded gateway whose membership is etcd, under a prefix of its own; yields (http, prefix)."""
    prefix = f"{unique('test')}/gateways/"
    system = build_embedded(Settings(data_dir=tmp_path / "a"))
    system.membership = EtcdMembership(etcd_url, member("gw-a"), prefix=prefix, ttl=3)
    app = create_app(system)
    await system.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw-a") as http:
            yield http, prefix
    finally:
        await system.close()


async def cluster_ids(http: httpx.AsyncClient) -> list[str]:
    body: dict[str, Any] = (await http.get("/api/cluster")).json()
    return [m["id"] for m in body["gateways"]]


async def test_cluster_follows_registration_revocation_and_lease_expiry(
    gateway: tuple[httpx.AsyncClient, str], etcd_url: str
) -> None:
    http, prefix = gateway
    other = EtcdMembership(etcd_url, member("gw-b"), prefix=prefix, ttl=3)
    await other.start()
    try:
        await eventually(lambda: cluster_ids(http), 10, "gw-a to list itself")
        assert await eventually(lambda: _equals(cluster_ids(http), ["gw-a", "gw-b"]), 10, "both gateways listed")
        await eventually(lambda: sorted(m.id for m in other.members()) == ["gw-a", "gw-b"], 10, "gw-b sees gw-a")
    finally:
        await other.close()  # graceful: revokes its lease
    await eventually(lambda: _equals(cluster_ids(http), ["gw-a"]), 10, "gw-b to leave at once")

    # A crashed gateway: registered under a 2 s lease that nobody refreshes.
    host, port = parse_etcd_url(etcd_url)
    async with aetcd.Client(host=host, port=port) as raw:
        lease = await raw.lease(2)
        crashed = member("gw-crashed")
        await raw.put(f"{prefix}{crashed.id}".encode(), json.dumps(crashed.to_json()).encode(), lease=lease)
        await eventually(lambda: _equals(cluster_ids(http), ["gw-a", "gw-crashed"]), 10, "gw-crashed listed")
        started = time.monotonic()
        await eventually(lambda: _equals(cluster_ids(http), ["gw-a"]), 15, "gw-crashed to expire")
        assert time.monotonic() - started < 6


async def test_lease_loss_re_registers(gateway: tuple[httpx.AsyncClient, str], etcd_url: str) -> None:
    http, prefix = gateway
    other = EtcdMembership(etcd_url, member("gw-b"), prefix=prefix, ttl=3)
    await other.start()
    try:
        await eventually(lambda: _equals(cluster_ids(http), ["gw-a", "gw-b"]), 10, "both listed")
        host, port = parse_etcd_url(etcd_url)
        async with aetcd.Client(host=host, port=port) as raw:
            await raw.revoke_lease(other._lease.id)  # as if etcd lost it
        await eventually(lambda: other.registrations >= 2, 10, "gw-b to register again")
        await eventually(lambda: _equals(cluster_ids(http), ["gw-a", "gw-b"]), 10, "gw-b listed again")
    finally:
        await other.close()


async def test_route_is_the_rendezvous_winner_stable_and_spread(
    gateway: tuple[httpx.AsyncClient, str], etcd_url: str
) -> None:
    http, prefix = gateway
    others = [EtcdMembership(etcd_url, member(f"gw-{n}"), prefix=prefix, ttl=3) for n in "bc"]
    for m in others:
        await m.start()
    try:
        await eventually(lambda: _equals(cluster_ids(http), ["gw-a", "gw-b", "gw-c"]), 10, "three gateways")
        live = [Member.from_json(m) for m in (await http.get("/api/cluster")).json()["gateways"]]
        chosen = Counter()
        for i in range(300):
            board = f"board-{i}"
            first = (await http.get(f"/api/route/{board}")).json()
            assert first == (await http.get(f"/api/route/{board}")).json()  # stable
            assert first["board"] == board
            assert first["gateway"] == preferred(board, live).to_json()  # type: ignore[union-attr]
            chosen[first["gateway"]["id"]] += 1
        assert set(chosen) == {"gw-a", "gw-b", "gw-c"} and min(chosen.values()) > 60, chosen
        assert (await http.get("/api/route/no%20spaces")).status_code == 400
    finally:
        for m in others:
            await m.close()


async def _equals(ids: Any, want: list[str]) -> bool:
    return bool(await ids == want)
