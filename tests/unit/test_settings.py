import pytest

from gateway.settings import Settings


def test_env_then_overrides() -> None:
    settings = Settings.load({"INKSTREAM_PORT": "9000", "INKSTREAM_FSYNC": "yes"}, port=9100)
    assert settings.port == 9100 and settings.fsync is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INKSTREAM_MAX_UPDATE_BYTES": "-5"}, "max_update_bytes"),
        ({"INKSTREAM_IDLE_UNLOAD_SECONDS": "0"}, "idle_unload_seconds"),
        ({"INKSTREAM_PORT": "70000"}, "port"),
        ({"INKSTREAM_PORT": "eighty"}, "not a valid int"),
        ({"INKSTREAM_MAX_UPDATE_BYTES": "9000000", "INKSTREAM_MAX_FRAME_BYTES": "1000"}, "must not exceed"),
        ({"INKSTREAM_EVENT_LOOP": "trio"}, "event_loop"),
        ({"INKSTREAM_LOG_LEVEL": "LOUD"}, "log_level .* must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        Settings.load(env)


def test_log_level_in_any_case() -> None:
    assert Settings.load({"INKSTREAM_LOG_LEVEL": "debug"}).log_level == "debug"
    assert Settings.load({}, log_level="Warning").log_level == "Warning"
    with pytest.raises(SystemExit, match="not 'LOUD'"):
        Settings.load({}, log_level="LOUD")


def test_event_loop_setting_chooses_the_loop_a_gateway_runs_on() -> None:
    import asyncio

    import pytest
    import uvloop

    from gateway.server import run_loop

    assert Settings.load({}).event_loop == "uvloop"
    assert Settings.load({"INKSTREAM_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    seen: list[type] = []

    async def which() -> None:
        seen.append(type(asyncio.get_running_loop()))

    run_loop(which(), "uvloop")
    run_loop(which(), "asyncio")
    assert seen[0] is uvloop.Loop
    assert not issubclass(seen[1], uvloop.Loop)
    coro = which()
    with pytest.raises(SystemExit, match="event_loop must be one of"):
        run_loop(coro, "trio")
    coro.close()
