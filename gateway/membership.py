"""Which gateways are alive and which one a board prefers: the membership adapter for this process.

Embedded mode is one node (`SingleNode`); distributed mode registers in etcd
(`engine.adapters.etcd_membership`). Either way `GET /api/cluster` and `GET /api/route/{board}`
answer from `System.membership`.

This node's id and advertised URL come from `Settings.extra` (`gateway_id`, `advertise_url`) or
the INKSTREAM_GATEWAY_ID / INKSTREAM_ADVERTISE_URL environment variables, defaulting to
``{hostname}:{port}`` and ``http://{host}:{port}``.
"""

from __future__ import annotations

import os
import socket
import time

from engine.routing import Member, Membership, SingleNode
from gateway.settings import Settings


def this_member(settings: Settings) -> Member:
    """This gateway as a cluster member."""
    member_id = (
        settings.extra.get("gateway_id")
        or os.environ.get("INKSTREAM_GATEWAY_ID")
        or f"{socket.gethostname()}:{settings.port}"
    )
    url = (
        settings.extra.get("advertise_url")
        or os.environ.get("INKSTREAM_ADVERTISE_URL")
        or f"http://{settings.host}:{settings.port}"
    )
    return Member(id=str(member_id), url=str(url), started=time.time())


def build_membership(settings: Settings, distributed: bool) -> Membership:
    """etcd membership (distributed) or this node alone (embedded)."""
    member = this_member(settings)
    if not distributed:
        return SingleNode(member)
    from engine.adapters.etcd_membership import EtcdMembership

    ttl = int(settings.extra.get("etcd_lease_ttl") or os.environ.get("INKSTREAM_ETCD_LEASE_TTL") or 10)
    return EtcdMembership(settings.etcd_url, member, ttl=ttl)
