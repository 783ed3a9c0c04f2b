"""The one retry/backoff mechanism: exponential backoff with full jitter, reused everywhere.

Modelled on redis-py's `backoff.py`/`retry.py`: a `Backoff` computes the delay before attempt n,
`retry` runs an async operation until it succeeds (or attempts run out), logging each failure with
context and telling an optional `on_error` hook (for metrics). Nothing else in the code sleeps to
wait out a failure.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (n >= 1): uniform in [0, min(cap, base * 2**(n-1))] ("full jitter")."""

    base: float = 0.05
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, failures: int) -> float:
        """Seconds to wait after `failures` consecutive failures."""
        ceiling = min(self.cap, self.base * (2 ** max(0, min(failures - 1, 62))))
        return self.rng.uniform(0, ceiling)


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff | None = None,
    attempts: int | None = None,
    what: str = "operation",
    on_error: Callable[[BaseException, int], None] | None = None,
) -> T:
    """Run `operation` until it returns; retry errors in `retry_on` (forever if `attempts` is None)."""
    policy = backoff or Backoff()
    failures = 0
    while True:
        try:
            return await operation()
        except retry_on as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Cancelled while the operation ran, and a client library reported it as its own error
                # (a cancelled RPC): stop, or whoever cancelled us waits for a loop that never ends.
                raise asyncio.CancelledError() from exc
            failures += 1
            if on_error is not None:
                on_error(exc, failures)
            if attempts is not None and failures >= attempts:
                raise
            pause = policy.delay(failures)
            log.warning(
                "%s failed (attempt %d: %s: %s); retrying in %.2fs", what, failures, type(exc).__name__, exc, pause
            )
            await asyncio.sleep(pause)
