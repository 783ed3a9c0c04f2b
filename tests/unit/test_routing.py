"""Rendezvous hashing: deterministic, spread evenly, and minimal movement when members change."""

from __future__ import annotations

from collections import Counter

from engine.routing import Member, preferred, rank, score


def members(n: int) -> list[Member]:
    return [Member(id=f"gw-{i}", url=f"http://127.0.0.1:{9000 + i}", started=float(i)) for i in range(n)]


BOARDS = [f"board-{i}" for i in range(6000)]


def test_same_answer_regardless_of_member_order() -> None:
    gws = members(5)
    for board in BOARDS[:500]:
        assert preferred(board, gws) == preferred(board, list(reversed(gws)))
        assert preferred(board, gws) == rank(board, gws)[0]


def test_score_is_stable_across_processes() -> None:
    # blake2b, not Python's salted hash(): every gateway must agree.
    assert score("gw-0", "board-0") == score("gw-0", "board-0")
    assert score("gw-0", "board-0") == 0xA60AED510D5149  # a pinned value: changing the hash reroutes every board


def test_spread_is_even() -> None:
    gws = members(4)
    counts = Counter(preferred(b, gws).id for b in BOARDS)  # type: ignore[union-attr]
    expected = len(BOARDS) / len(gws)
    assert set(counts) == {m.id for m in gws}
    assert all(abs(c - expected) < 0.1 * expected for c in counts.values()), counts


def test_removing_a_member_moves_only_its_boards() -> None:
    gws = members(4)
    before = {b: preferred(b, gws) for b in BOARDS}
    gone = gws[1]
    after = {b: preferred(b, [m for m in gws if m != gone]) for b in BOARDS}
    moved = [b for b in BOARDS if before[b] != after[b]]
    assert all(before[b] == gone for b in moved)
    assert len(moved) == sum(1 for b in BOARDS if before[b] == gone)
    # and each moved board goes to its second choice
    assert all(after[b] == rank(b, gws)[1] for b in moved)


def test_adding_a_member_takes_about_a_fair_share() -> None:
    gws = members(4)
    new = Member("gw-new", "http://x", 0.0)
    before = {b: preferred(b, gws) for b in BOARDS}
    moved = [b for b in BOARDS if preferred(b, [*gws, new]) != before[b]]
    assert all(preferred(b, [*gws, new]) == new for b in moved)
    assert abs(len(moved) - len(BOARDS) / 5) < 0.1 * len(BOARDS) / 5


def test_no_members_means_no_preference() -> None:
    assert preferred("b", []) is None
    assert rank("b", []) == []


def test_member_json_round_trip() -> None:
    m = Member("gw-1", "http://127.0.0.1:8001", 1700000000.5)
    assert Member.from_json(m.to_json()) == m
