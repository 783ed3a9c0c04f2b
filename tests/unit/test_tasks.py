"""engine.tasks.start_eagerly: run a coroutine in the caller until it first has to wait."""

from __future__ import annotations

import asyncio

import pytest

from engine.tasks import start_eagerly


async def test_a_coroutine_that_never_waits_runs_to_the_end_in_the_caller() -> None:
    done: list[str] = []

    async def write() -> None:
        done.append("written")

    assert start_eagerly(write()) is None
    assert done == ["written"]  # before the caller yielded to the loop even once


async def test_an_error_before_the_first_wait_is_raised_in_the_caller() -> None:
    async def broken() -> None:
        raise ConnectionError("gone")

    with pytest.raises(ConnectionError, match="gone"):
        start_eagerly(broken())


async def test_a_coroutine_that_waits_continues_in_a_task_with_its_result() -> None:
    steps: list[str] = []
    gate = asyncio.get_running_loop().create_future()

    async def write() -> str:
        steps.append("before")
        value = await gate
        steps.append("after")
        await asyncio.sleep(0)  # a bare yield to the loop is passed through too
        return f"got {value}"

    task = start_eagerly(write(), name="eager-test")
    assert task is not None and task.get_name() == "eager-test"
    assert steps == ["before"]
    gate.set_result(7)
    assert await task == "got 7"
    assert steps == ["before", "after"]


async def test_an_error_after_the_first_wait_ends_the_task() -> None:
    gate = asyncio.get_running_loop().create_future()

    async def write() -> None:
        await gate
        raise ConnectionResetError("peer went away")

    task = start_eagerly(write())
    assert task is not None
    gate.set_result(None)
    with pytest.raises(ConnectionResetError):
        await task


async def test_cancelling_the_task_reaches_the_coroutine() -> None:
    cleaned: list[str] = []

    async def write() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("finally")

    task = start_eagerly(write())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally"]


async def test_a_coroutine_may_catch_the_cancellation_and_go_on() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)
            return "finished anyway"
        return "unreachable"

    task = start_eagerly(stubborn())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    assert await task == "finished anyway"
