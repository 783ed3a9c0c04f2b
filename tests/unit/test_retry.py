"""engine.retry: retries what it is told to, and never outlives a cancellation."""

from __future__ import annotations

import asyncio
import random

import pytest

from engine.retry import Backoff, retry


class Flaky(Exception):
    pass


async def test_retries_the_listed_errors_until_the_operation_succeeds() -> None:
    calls = 0

    async def operation() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Flaky("not yet")
        return "done"

    backoff = Backoff(base=0.001, cap=0.001, rng=random.Random(1))
    assert await retry(operation, retry_on=(Flaky,), backoff=backoff) == "done"
    assert calls == 3


async def test_gives_up_after_the_attempts_and_raises_what_else_failed() -> None:
    async def flaky() -> None:
        raise Flaky("always")

    backoff = Backoff(base=0.001, cap=0.001)
    with pytest.raises(Flaky):
        await retry(flaky, retry_on=(Flaky,), backoff=backoff, attempts=2)

    async def broken() -> None:
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        await retry(broken, retry_on=(Flaky,), backoff=backoff)


async def test_a_cancellation_a_library_reports_as_its_own_error_still_ends_the_retries() -> None:
    """Like a client whose cancelled RPC raises its own error: retrying it would keep the task alive
    after cancel(), and whoever awaits the cancelled task (shutdown) would hang."""
    started = asyncio.Event()

    async def rpc() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise Flaky("rpc cancelled") from None

    task = asyncio.create_task(retry(rpc, retry_on=(Flaky,), backoff=Backoff(base=0.001, cap=0.001)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=2)
    assert task.cancelled()
