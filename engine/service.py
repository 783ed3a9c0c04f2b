"""BoardService: loads boards, accepts updates into the log, tells listeners, unloads idle boards.

Accepting an update: validate and apply it to the board's live Doc (synchronously, so the order
of application is the order of the log), append the effective change to the event log, and only
when the log has it durably, resolve the caller and notify listeners (who broadcast it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.board_id import validate_board_id
from engine.errors import InkstreamError, InvalidUpdate, StorageUnavailable
from engine.events import ANONYMOUS, VERSION_PENDING, Event, Provenance
from engine.fold import apply_update, load_doc
from engine.limits import Limits
from engine.live_board import LiveBoard
from engine.ports import EventLog, FanOut, SnapshotStore
from engine.tasks import cancel_and_wait

log = logging.getLogger(__name__)

#: listener(event, origin): origin is what the submitter passed (e.g. its connection), None if remote.
UpdateListener = Callable[[Event, object | None], None]
#: reset listener(board_id, reason): the live board was dropped; its connections must resync.
ResetListener = Callable[[str, str], None]


MAX_OWN_PENDING = 8192  # own deltas per board remembered until the fan-out returns them


@dataclass(eq=False)
class _Slot:
    board: LiveBoard
    refs: int = 0
    inflight: int = 0
    last_append: asyncio.Future[Event | None] | None = None  # the newest append not yet durable
    last_active: float = field(default_factory=time.monotonic)
    listeners: list[UpdateListener] = field(default_factory=list)
    #: Deltas this node appended that the fan-out has not brought back yet (distributed mode only).
    own: dict[bytes, None] = field(default_factory=dict)


class BoardService:
    """The write path and the in-process view of boards."""

    def __init__(
        self,
        event_log: EventLog,
        snapshots: SnapshotStore,
        limits: Limits | None = None,
        idle_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        fanout: FanOut | None = None,
    ) -> None:
        self.log = event_log
        self.fanout = fanout  # other nodes' updates to loaded boards (None: single node)
        self._unfollowing: dict[str, asyncio.Task[None]] = {}
        self.snapshots = snapshots
        self.limits = limits or Limits()
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._slots: dict[str, _Slot] = {}
        self._loading: dict[str, asyncio.Future[_Slot]] = {}
        self._reset_listeners: list[ResetListener] = []
        self._reaper: asyncio.Task[None] | None = None
        self.on_accepted: Callable[[Event, float], None] | None = None  # (event, append seconds)

    async def start(self) -> None:
        """Start unloading idle boards in the background."""
        self._reaper = asyncio.create_task(self._reap_forever(), name="inkstream-board-reaper")

    async def close(self) -> None:
        """Stop the reaper and drop every board from memory (the log already has everything)."""
        if self._reaper is not None:
            await cancel_and_wait(self._reaper)
        for slot in self._slots.values():
            slot.board.close()
            self._unfollow(slot.board.board_id)
        self._slots.clear()

    @property
    def loaded(self) -> int:
        """How many boards are in memory."""
        return len(self._slots)

    def loaded_board(self, board_id: str) -> LiveBoard | None:
        """The live board if it is in memory, without loading it."""
        slot = self._slots.get(board_id)
        return slot.board if slot else None

    def on_reset(self, listener: ResetListener) -> None:
        """Register `listener(board_id, reason)` for boards dropped after a storage failure."""
        self._reset_listeners.append(listener)

    # -- loading ---------------------------------------------------------------------------------

    async def open(self, board_id: str) -> LiveBoard:
        """The live board, loading it (latest snapshot + the log after it) if needed."""
        return (await self._slot(board_id)).board

    async def _slot(self, board_id: str) -> _Slot:
        validate_board_id(board_id)
        slot = self._slots.get(board_id)
        if slot is not None:
            slot.last_active = time.monotonic()
            return slot
        loading = self._loading.get(board_id)
        if loading is None:
            loading = asyncio.get_running_loop().create_future()
            self._loading[board_id] = loading
            try:
                board = await self._load(board_id)
                slot = _Slot(board)
                self._slots[board_id] = slot
                if self.fanout is not None:
                    try:
                        await self._follow(board)
                    except BaseException:
                        del self._slots[board_id]
                        raise
                loading.set_result(slot)
            except BaseException as exc:
                loading.set_exception(exc)
                loading.exception()  # mark retrieved: waiters (if any) re-raise it themselves
                raise
            finally:
                del self._loading[board_id]
            return slot
        return await asyncio.shield(loading)

    async def _load(self, board_id: str) -> LiveBoard:
        started = time.perf_counter()
        snapshot = await self.snapshots.latest(board_id)
        base_version = snapshot.version if snapshot else 0
        events = await self.log.read(board_id, after=base_version)
        size = len(snapshot.state) if snapshot else 0
        doc = load_doc(snapshot.state if snapshot else None)
        version = base_version
        for event in events:
            apply_update(doc, event.update)
            version = event.version
            size += len(event.update)
        log.debug(
            "loaded board %s at version %d (%d log events) in %.1f ms",
            board_id,
            version,
            len(events),
            (time.perf_counter() - started) * 1000,
        )
        return LiveBoard(board_id, doc, version, state_bytes=size)

    def retain(self, board_id: str) -> None:
        """Keep a loaded board in memory (a connection is using it) until `release`."""
        slot = self._slots[board_id]
        slot.refs += 1
        slot.last_active = time.monotonic()

    def release(self, board_id: str) -> None:
        """Undo one `retain`; the board is unloaded once idle."""
        slot = self._slots.get(board_id)
        if slot is not None:
            slot.refs = max(0, slot.refs - 1)
            slot.last_active = time.monotonic()

    def listen(self, board_id: str, listener: UpdateListener) -> None:
        """Call `listener(event, origin)` for every update accepted on a loaded board."""
        self._slots[board_id].listeners.append(listener)

    def unlisten(self, board_id: str, listener: UpdateListener) -> None:
        """Stop calling `listener` for that board."""
        slot = self._slots.get(board_id)
        if slot is not None and listener in slot.listeners:
            slot.listeners.remove(listener)

    # -- the write path --------------------------------------------------------------------------

    async def submit(
        self, board_id: str, update: bytes, client_id: str, user: str | None = None, origin: object | None = None
    ) -> Event | None:
        """Validate, apply and durably log `update`; return its Event with its version, None if it changed nothing."""
        slot = await self._slot(board_id)
        future = self.submit_loaded(slot.board, update, client_id, user, origin, wait_for_version=True)
        return await future

    def submit_loaded(
        self,
        board: LiveBoard,
        update: bytes,
        client_id: str,
        user: str | None = None,
        origin: object | None = None,
        wait_for_version: bool = False,
    ) -> asyncio.Future[Event | None]:
        """Like `submit` for a board already open; validation errors raise here, synchronously.

        The returned future resolves once the log has the update (accepted), and listeners hear of it
        then. This is the live path: by default it does not wait for the version, which a
        distributed log assigns later (the Event then carries VERSION_PENDING and the board learns
        the version when its own update comes back through the fan-out, a no-op there). Callers may
        keep several in flight: their log order is the order of these calls.
        """
        slot = self._slots.get(board.board_id)
        if slot is None or slot.board is not board:
            raise StorageUnavailable(f"board {board.board_id} was unloaded; reconnect")
        delta = board.apply(update, self.limits)  # raises InvalidUpdate / UpdateTooLarge
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Event | None] = loop.create_future()
        if delta is None:
            # Nothing new, but it may duplicate an update still on its way into the log:
            # answer only once everything applied before it is durable.
            self._after_durable(slot, result)
            return result
        slot.inflight += 1
        slot.last_append = result
        if self.fanout is not None:
            slot.own[delta] = None
            if len(slot.own) > MAX_OWN_PENDING:
                del slot.own[next(iter(slot.own))]  # oldest first; one evicted too early is merely re-applied
        slot.last_active = time.monotonic()
        provenance = Provenance(time=self.clock(), client_id=client_id, user=user or ANONYMOUS)
        started = time.perf_counter()

        def then(done: asyncio.Future[Event]) -> None:
            self._appended(slot, done, result, origin, started)

        try:
            self.log.append(board.board_id, delta, provenance, wait_for_version=wait_for_version, then=then)
        except InkstreamError as exc:  # the log refused at once (closed): same path as a failed append
            failed: asyncio.Future[Event] = loop.create_future()
            failed.set_exception(exc)
            failed.add_done_callback(then)
        return result

    def _after_durable(self, slot: _Slot, result: asyncio.Future[Event | None]) -> None:
        pending = slot.last_append
        if pending is None or pending.done():
            result.set_result(None)
            return

        def settle(done: asyncio.Future[Event | None]) -> None:
            if result.done():
                return
            if done.cancelled() or done.exception() is not None:
                result.set_exception(StorageUnavailable("an earlier update could not be stored"))
            else:
                result.set_result(None)

        pending.add_done_callback(settle)

    def durable(self, board_id: str) -> asyncio.Future[int]:
        """A future: the version covering everything applied to the live board when this was called,
        once every one of those updates is in the log.

        Reads of the live Doc (a joining client's sync step 2, the HTTP API) include updates the
        moment they are applied. Callers read, call this at once, and await it before sending what
        they read, so nothing is served that a crash could still take back. The read point is the
        call, not the await: a caller may do slow work on what it read (render it) in between.
        """
        slot = self._slots.get(board_id)
        if slot is None:
            raise StorageUnavailable(f"board {board_id} was unloaded; retry")
        result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        pending = slot.last_append
        read_version = slot.board.version  # what had been accepted when the caller read
        if pending is None or pending.done():
            result.set_result(read_version)
            return result

        def settle(done: asyncio.Future[Event | None]) -> None:
            if result.done():
                return
            error = StorageUnavailable("append cancelled") if done.cancelled() else done.exception()
            if error is not None:
                result.set_exception(StorageUnavailable(f"board {board_id} could not store an update: {error}"))
                return
            event = done.result()
            if event is None or event.version == VERSION_PENDING:
                result.set_result(slot.board.version)  # the log numbers it later (Kafka): the latest known
            else:  # the last update the caller read is `pending`'s
                result.set_result(max(event.version, read_version))

        pending.add_done_callback(settle)
        return result

    def _appended(
        self,
        slot: _Slot,
        done: asyncio.Future[Event],
        result: asyncio.Future[Event | None],
        origin: object | None,
        started: float,
    ) -> None:
        slot.inflight -= 1
        if done.cancelled():
            error: BaseException = StorageUnavailable("append cancelled")
        else:
            error = done.exception()  # type: ignore[assignment]
        if error is not None:
            if not result.done():
                result.set_exception(error)
            # The live Doc holds a change the log does not: drop it so it reloads from the log.
            self._drop(slot.board.board_id, f"storage failure: {error}")
            return
        event = done.result()
        board = slot.board
        board.version = max(board.version, event.version)
        if self.on_accepted is not None:
            self.on_accepted(event, time.perf_counter() - started)
        if not result.done():
            result.set_result(event)
        for listener in list(slot.listeners):
            try:
                listener(event, origin)
            except Exception:
                log.exception("update listener failed for board %s", board.board_id)

    def _drop(self, board_id: str, reason: str) -> None:
        slot = self._slots.pop(board_id, None)
        if slot is None:
            return
        slot.board.close()
        self._unfollow(board_id)
        log.error("dropped board %s from memory: %s", board_id, reason)
        for listener in self._reset_listeners:
            listener(board_id, reason)

    # -- other nodes' updates (distributed mode) ---------------------------------------------------

    async def _follow(self, board: LiveBoard) -> None:
        assert self.fanout is not None
        pending = self._unfollowing.pop(board.board_id, None)
        if pending is not None:
            await pending  # an earlier unsubscribe of this board must not undo this subscription
        await self.fanout.subscribe(board.board_id, board.version, self.apply_remote)

    def _unfollow(self, board_id: str) -> None:
        if self.fanout is not None:
            task = asyncio.ensure_future(self.fanout.unsubscribe(board_id))
            self._unfollowing[board_id] = task
            task.add_done_callback(lambda done: self._unfollowed(board_id, done))

    def _unfollowed(self, board_id: str, task: asyncio.Task[None]) -> None:
        if self._unfollowing.get(board_id) is task:
            del self._unfollowing[board_id]

    def apply_remote(self, event: Event) -> None:
        """Integrate an update another node got accepted; tell listeners its effect (origin None)."""
        slot = self._slots.get(event.board)
        if slot is None:
            return
        board = slot.board
        if slot.own and event.update in slot.own:
            # Our own update coming back through the fan-out: this very Doc applied it already (the
            # set belongs to the slot, so a board reloaded meanwhile integrates it normally). Skipping
            # the re-apply halves a gateway's pycrdt work when it writes as much as it reads.
            del slot.own[event.update]
            board.version = max(board.version, event.version)
            return
        try:
            delta = board.integrate(event.update)
        except InvalidUpdate as exc:
            log.error("board %s: update %d from the log does not apply: %s", event.board, event.version, exc)
            return
        board.version = max(board.version, event.version)
        if delta is None:
            return  # this node had it already (e.g. it accepted it itself)
        remote = Event(event.board, event.version, delta, event.provenance)
        for listener in list(slot.listeners):
            try:
                listener(remote, None)
            except Exception:
                log.exception("update listener failed for board %s", event.board)

    # -- idle unloading --------------------------------------------------------------------------

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Unload boards nobody uses that have been idle for `idle_seconds`; return their ids."""
        now = time.monotonic() if now is None else now
        idle = [
            board_id
            for board_id, slot in self._slots.items()
            if slot.refs == 0 and slot.inflight == 0 and now - slot.last_active >= self.idle_seconds
        ]
        for board_id in idle:
            self._slots.pop(board_id).board.close()
            self._unfollow(board_id)
        return idle

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(self.idle_seconds / 4, 15.0))
        while True:
            await asyncio.sleep(interval)
            unloaded = self.unload_idle()
            if unloaded:
                log.debug("unloaded %d idle boards", len(unloaded))
