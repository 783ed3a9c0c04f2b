"""Routing: which gateway a board prefers. Rendezvous (highest-random-weight) hashing, pure logic.

Every node computes the same answer from the same member list with no coordination, and when a
member joins or leaves only the boards whose top choice changes move (about 1/N of them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Member:
    """One live gateway: a stable id, the URL clients reach it at, and when it started (epoch seconds)."""

    id: str
    url: str
    started: float

    def to_json(self) -> dict[str, Any]:
        """The member as stored in etcd and returned by the HTTP API."""
        return {"id": self.id, "url": self.url, "started": self.started}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Member:
        """Parse a member; ValueError/KeyError/TypeError if it is not one."""
        return cls(id=str(raw["id"]), url=str(raw["url"]), started=float(raw["started"]))


def score(member_id: str, board: str) -> int:
    """The weight of `member_id` for `board`: a 64-bit hash of both (stable across processes and runs)."""
    digest = hashlib.blake2b(f"{member_id}\x00{board}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank(board: str, members: Iterable[Member]) -> list[Member]:
    """Members in order of preference for `board` (highest weight first; ties broken by id)."""
    return sorted(members, key=lambda m: (score(m.id, board), m.id), reverse=True)


def preferred(board: str, members: Iterable[Member]) -> Member | None:
    """The preferred gateway of `board`, None if there are no members."""
    best: Member | None = None
    best_key: tuple[int, str] | None = None
    for member in members:
        key = (score(member.id, board), member.id)
        if best_key is None or key > best_key:
            best, best_key = member, key
    return best


class Membership(Protocol):
    """The live gateways of the cluster (etcd in distributed mode, this process alone when embedded)."""

    async def start(self) -> None:
        """Register this node and start following the member list."""

    async def close(self) -> None:
        """Deregister and stop."""

    @property
    def self_member(self) -> Member:
        """This node."""

    def members(self) -> list[Member]:
        """The live members, sorted by id."""


class SingleNode:
    """Membership of a one-process deployment: always exactly this node."""

    def __init__(self, member: Member) -> None:
        self._member = member

    async def start(self) -> None:
        """Nothing to register."""

    async def close(self) -> None:
        """Nothing to release."""

    @property
    def self_member(self) -> Member:
        """This node."""
        return self._member

    def members(self) -> list[Member]:
        """Just this node."""
        return [self._member]
