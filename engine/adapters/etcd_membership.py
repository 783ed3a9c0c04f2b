"""Gateway membership in etcd: register under a lease, keep it alive, watch the prefix.

Each gateway puts ``{prefix}{id}`` -> JSON {id, url, started} attached to a lease of `ttl`
seconds and refreshes the lease every ttl/3. If the lease is lost (etcd restarted, a long pause,
revoked) the next refresh sees TTL <= 0 and the gateway registers again with a new lease. A crashed
gateway drops out when its lease expires.

The member list is a local mirror of the prefix: a full read, then a watch from the next revision.
If the watch breaks (etcd down, compaction), the mirror is re-read and the watch restarted, with
jittered backoff (engine.retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import aetcd
import aetcd.exceptions

from engine.retry import Backoff, retry
from engine.routing import Member
from engine.tasks import cancel_and_wait

log = logging.getLogger(__name__)

PREFIX = "inkstream/gateways/"
CLOSE_SECONDS = 2.0  # the longest any etcd call on the way out may take (cancelling the watch, revoking, closing)

#: What a call to etcd can fail with that is worth retrying.
ETCD_ERRORS: tuple[type[Exception], ...] = (aetcd.exceptions.ClientError, OSError, TimeoutError)


def parse_etcd_url(url: str) -> tuple[str, int]:
    """(host, port) of an etcd client URL such as http://127.0.0.1:2379."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    return parts.hostname or "127.0.0.1", parts.port or 2379


class EtcdMembership:
    """This gateway's registration in etcd plus a live mirror of every registered gateway."""

    def __init__(
        self,
        etcd_url: str,
        member: Member,
        *,
        prefix: str = PREFIX,
        ttl: int = 10,
        backoff: Backoff | None = None,
    ) -> None:
        self.etcd_url = etcd_url
        self._member = member
        self.prefix = prefix
        self.ttl = max(2, ttl)
        self.backoff = backoff or Backoff(base=0.1, cap=min(5.0, self.ttl / 3))
        host, port = parse_etcd_url(etcd_url)
        self._client = aetcd.Client(host=host, port=port, timeout=max(1, self.ttl // 3))
        self._lease: Any = None
        self._members: dict[str, Member] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._watch: Any = None
        self.changed = asyncio.Condition()  # notified whenever the member list changes
        self.registrations = 0  # how many times this node registered (re-registrations after lease loss count)

    @property
    def key(self) -> bytes:
        """This node's key in etcd."""
        return f"{self.prefix}{self._member.id}".encode()

    @property
    def self_member(self) -> Member:
        """This node."""
        return self._member

    def members(self) -> list[Member]:
        """The live members as last seen in etcd (this node included once registered), sorted by id."""
        return sorted(self._members.values(), key=lambda m: m.id)

    async def start(self) -> None:
        """Register (retrying until etcd answers) and start the keepalive and watch loops."""
        await retry(self._register, retry_on=ETCD_ERRORS, backoff=self.backoff, what="registering in etcd")
        self._tasks = [
            asyncio.create_task(self._keepalive_forever(), name="inkstream-etcd-keepalive"),
            asyncio.create_task(self._watch_forever(), name="inkstream-etcd-watch"),
        ]

    async def close(self) -> None:
        """Stop the loops and revoke the lease, so this node leaves the list at once."""
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self._lease is not None:
            try:
                await asyncio.wait_for(self._client.revoke_lease(self._lease.id), timeout=CLOSE_SECONDS)
            except ETCD_ERRORS as exc:  # asyncio.TimeoutError is TimeoutError on 3.11
                log.warning("could not revoke etcd lease (it will expire in %ss): %s", self.ttl, exc)
            self._lease = None
        with contextlib.suppress(*ETCD_ERRORS):  # bounded like every call on the way out: a hung close
            await asyncio.wait_for(self._client.close(), timeout=CLOSE_SECONDS)  # must not hang the caller

    async def _register(self) -> None:
        lease = await self._client.lease(self.ttl)
        await self._client.put(self.key, json.dumps(self._member.to_json()).encode(), lease=lease)
        self._lease = lease
        self.registrations += 1
        await self._set(self._member.id, self._member)
        log.info("registered %s in etcd (lease %x, ttl %ss)", self._member.id, lease.id, self.ttl)

    async def _refresh_or_register(self) -> None:
        if self._lease is None:
            await self._register()
            return
        reply = await self._client.refresh_lease(self._lease.id)
        if reply is None or reply.TTL <= 0:
            log.warning("etcd lease of %s was lost; registering again", self._member.id)
            self._lease = None
            await self._register()

    async def _keepalive_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)  # the lease refresh cadence
            await retry(
                self._refresh_or_register, retry_on=ETCD_ERRORS, backoff=self.backoff, what="refreshing etcd lease"
            )

    async def _watch_forever(self) -> None:
        while True:
            await retry(self._sync_and_watch, retry_on=ETCD_ERRORS, backoff=self.backoff, what="watching etcd")

    async def _sync_and_watch(self) -> None:
        snapshot = await self._client.get_prefix(self.prefix.encode())
        members: dict[str, Member] = {}
        for kv in snapshot:
            member = self._parse(kv.value)
            if member is not None:
                members[member.id] = member
        await self._replace(members)
        revision = snapshot.header.revision if snapshot.header is not None else 0
        watch = await self._client.watch_prefix(self.prefix.encode(), start_revision=revision + 1)
        self._watch = watch
        try:
            async for event in watch:
                member_id = event.kv.key.decode()[len(self.prefix) :]
                if event.kind == "PUT":
                    member = self._parse(event.kv.value)
                    if member is not None:
                        await self._set(member.id, member)
                else:
                    await self._set(member_id, None)
                    if member_id == self._member.id and self._lease is not None:
                        log.warning("this node's etcd key was deleted; registering again")
                        self._lease = None  # the keepalive loop registers again
        finally:
            with contextlib.suppress(*ETCD_ERRORS):
                await asyncio.wait_for(watch.cancel(), timeout=CLOSE_SECONDS)
        raise aetcd.exceptions.ClientError("etcd watch ended")  # re-sync and watch again

    def _parse(self, value: bytes) -> Member | None:
        try:
            return Member.from_json(json.loads(value))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("ignoring malformed member under %s: %r (%s)", self.prefix, value[:200], exc)
            return None

    async def _set(self, member_id: str, member: Member | None) -> None:
        async with self.changed:
            if member is None:
                self._members.pop(member_id, None)
            else:
                self._members[member_id] = member
            self.changed.notify_all()

    async def _replace(self, members: dict[str, Member]) -> None:
        async with self.changed:
            self._members = members
            self.changed.notify_all()
