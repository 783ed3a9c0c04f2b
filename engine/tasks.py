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
