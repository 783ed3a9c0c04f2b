"""Small asyncio helpers shared by every long-running part."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: asyncio.Task[Any] | Iterable[asyncio.Task[Any] | None] | None) -> None:
    """Cancel background tasks and wait until they have finished.

    A task that had already failed is logged rather than re-raised: the part stopping it has nothing
    left to do about it. Cancelling the caller still cancels the wait.
    """
    if tasks is None:
        return
    pending = [tasks] if isinstance(tasks, asyncio.Task) else [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    for task in pending:
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves, not just the task we stopped
        except Exception:
            log.warning("background task %s had failed", task.get_name(), exc_info=True)


class _Resume:
    """Awaitable that continues a coroutine which was started by hand and suspended at `yielded`."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Any:
        value = self.yielded
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # thrown into the task (cancellation): pass it on
                try:
                    value = self.coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = self.coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def start_eagerly(coro: Any, name: str | None = None) -> asyncio.Task[Any] | None:
    """Run `coro` right now, in the caller, until it first suspends; None if it finished without
    suspending (its exception, if any, is raised here), else a task that runs the rest."""
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None

    async def rest() -> Any:
        return await _Resume(coro, yielded)

    return asyncio.get_running_loop().create_task(rest(), name=name)
