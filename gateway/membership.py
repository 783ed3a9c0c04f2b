"""Which gateways are alive and which one a board prefers: the membership adapter for this process.

Embedded mode is one node (`SingleNode`); distributed mode registers in etcd
(`engine.adapters.etcd_membership`). Either way `GET /api/cluster` and `GET /api/route/{board}`
answer from `System.membership`.

This node's id and advertised URL come from the settings `gateway_id` and `advertise_url`
(INKSTREAM_GATEWAY_ID / INKSTREAM_ADVERTISE_URL), defaulting to
``{hostname}:{port}`` and ``http://{host}:{port}``.
"""

from __future__ import annotations

import socket
import time

from engine.routing import Member, Membership, SingleNode
from gateway.settings import Settings


def this_member(settings: Settings) -> Member:
    """This gateway as a cluster member."""
    member_id = settings.gateway_id or f"{socket.gethostname()}:{settings.port}"
    url = settings.advertise_url or f"http://{settings.host}:{settings.port}"
    return Member(id=str(member_id), url=str(url), started=time.time())


def build_membership(settings: Settings, distributed: bool) -> Membership:
    """etcd membership (distributed) or this node alone (embedded)."""
    member = this_member(settings)
    if not distributed:
        return SingleNode(member)
    from engine.adapters.etcd_membership import EtcdMembership

    return EtcdMembership(settings.etcd_url, member, ttl=settings.etcd_lease_ttl)
