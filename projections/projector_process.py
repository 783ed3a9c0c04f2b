"""The embedded projector in its own process, supervised by `inkstream serve`.

Folding history (recording each version's changes, checkpoints, plain-JSON snapshots) costs about
as much CPU as serving the clients whose updates it folds. In the gateway's process that work
competes for the GIL and the event loop with live delivery, and showed up as its latency tail. The
projector is already a separate consumer of the log with its own cursor (as `inkstream projector` is
in distributed mode), so it runs the same `LocalProjector` in a child process, reading the SQLite
event log and writing the projection database, both in WAL mode, while the gateway only reads
projections. Still one command and no servers: the child is started, restarted and stopped by
the gateway.

The child is a fresh interpreter (`python -m projections.projector_process`), not a
multiprocessing child: multiprocessing's spawn re-imports the parent's main module, which fails
or hangs when the embedded system is started from a script without a `__main__` guard, from a
test runner or from an interactive session. Its settings arrive as JSON on the command line.

The child exits when its parent goes away (even by `kill -9`): it watches a pipe whose write end
only the parent holds. It polls the log every STEP_INTERVAL_SECONDS; it is idempotent and resumes
from its stored cursor, so a crash or restart of either process loses nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.adapters.sqlite_log import SqliteEventLog
from engine.priority import yield_to_live_work
from engine.tasks import cancel_and_wait
from projections.sqlite_store import SqliteProjectionStore

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0
CHILD_MODULE = "projections.projector_process"


@dataclass(frozen=True)
class ProjectorConfig:
    """What the child needs to open the same databases."""

    events_db: Path
    projections_db: Path
    fsync: bool
    checkpoint_every: int
    rewind: bool  # the parent's store found projections from before history: refold from the start
    log_level: str = "INFO"

    def to_json(self) -> str:
        return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> ProjectorConfig:
        raw = json.loads(text)
        raw["events_db"], raw["projections_db"] = Path(raw["events_db"]), Path(raw["projections_db"])
        return cls(**raw)


def main(argv: list[str] | None = None) -> None:
    """The child's entry point: `python -m projections.projector_process --config JSON --alive-fd N`."""
    parser = argparse.ArgumentParser(prog=CHILD_MODULE, description="inkstream's embedded projector (child)")
    parser.add_argument("--config", required=True, help="ProjectorConfig as JSON")
    parser.add_argument("--alive-fd", type=int, required=True, help="read end of the parent's pipe")
    args = parser.parse_args(argv)
    config = ProjectorConfig.from_json(args.config)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the parent stops us
    yield_to_live_work()  # before any thread starts (they inherit it): the gateway preempts us at once
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s [projector] %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_child(config, args.alive_fd))


async def _child(config: ProjectorConfig, alive_fd: int) -> None:
    from projections.local_projector import STEP_INTERVAL_SECONDS, LocalProjector

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(alive_fd, stop.set)  # readable = EOF: the parent closed it or died
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    event_log = SqliteEventLog(config.events_db, fsync=config.fsync, reader_only=True)
    store = SqliteProjectionStore(config.projections_db, fsync=config.fsync)
    await event_log.start()
    await store.start()
    store.history_backfill = store.history_backfill or config.rewind
    projector = LocalProjector(event_log, store, checkpoint_every=config.checkpoint_every)
    projector.poll_seconds = STEP_INTERVAL_SECONDS  # no commit notifications across processes: poll
    await projector.start()
    try:
        await stop.wait()
    finally:
        loop.remove_reader(alive_fd)
        await projector.close()
        await store.close()
        await event_log.close()


def _child_env() -> dict[str, str]:
    """The parent's environment, with the directory our packages live in first on the import path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class ProjectorProcess:
    """Runs the local projector in a child process; restarts it if it dies; stops it on close."""

    def __init__(self, event_log: SqliteEventLog, store: SqliteProjectionStore, checkpoint_every: int) -> None:
        self.events_db = event_log.path
        self.projections_db = store.path
        self.fsync = store.fsync
        self.store = store  # the gateway's handle on the same file: it knows whether history needs a refold
        self.checkpoint_every = checkpoint_every
        self.log_level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        self.rewind = False
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._alive_writer: int | None = None  # write end of the pipe the child watches
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None else None

    async def _spawn(self) -> None:
        config = ProjectorConfig(
            self.events_db, self.projections_db, self.fsync, self.checkpoint_every, self.rewind, self.log_level
        )
        reader, writer = os.pipe()
        os.set_inheritable(reader, True)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                CHILD_MODULE,
                "--config",
                config.to_json(),
                "--alive-fd",
                str(reader),
                pass_fds=(reader,),
                stdin=asyncio.subprocess.DEVNULL,
                env=_child_env(),
            )
        except BaseException:
            os.close(writer)
            raise
        finally:
            os.close(reader)  # only the child holds the read end: it sees EOF when we close or die
        self._process, self._alive_writer = process, writer
        self.rewind = False  # a restarted child resumes from the stored cursor
        log.info("local projector running as process %s", process.pid)

    async def start(self) -> None:
        """Start the child (after the gateway opened both databases) and a task that restarts it if it dies."""
        self.rewind = self.store.history_backfill
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="inkstream-projector-supervisor")

    async def _supervise(self) -> None:
        while not self._closing:
            process = self._process
            if process is None:
                await asyncio.sleep(RESTART_DELAY_SECONDS)
            else:
                code = await process.wait()
                if self._closing:
                    return
                log.error("local projector process %s exited with %s; restarting it", process.pid, code)
                self._release()
                self.restarts += 1
                await asyncio.sleep(RESTART_DELAY_SECONDS)
            if self._closing:
                return
            try:
                await self._spawn()
            except Exception:
                log.exception("could not start the local projector process; trying again")

    def _release(self) -> None:
        if self._alive_writer is not None:
            os.close(self._alive_writer)
            self._alive_writer = None
        self._process = None

    async def close(self, grace: float = 10.0) -> None:
        """Ask the child to stop (it writes what it folded), wait up to `grace` seconds, then kill it."""
        self._closing = True
        if self._supervisor is not None:
            await cancel_and_wait(self._supervisor)
        process = self._process
        self._release()  # EOF on the child's pipe: it stops
        if process is None:
            return
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            log.warning("local projector process %s did not stop within %.0f s; killing it", process.pid, grace)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.wait_for(process.wait(), 5.0)


if __name__ == "__main__":
    main()
