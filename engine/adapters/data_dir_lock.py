"""One writer process per embedded data directory.

The embedded event log numbers each board's versions from an in-memory head per board: a second
process appending to the same `events.db` numbers them too, and one of the two then fails every
commit of that board on UNIQUE(board, version). So whatever appends to a data dir's event log
(`inkstream serve`, `inkstream import --data-dir`) first takes an exclusive advisory lock
(`flock`) on `DIR/inkstream.lock`, for as long as it may write. A second process is refused at
once with `DataDirInUse`, naming the directory and the process holding it.

- The OS releases the lock when the holder exits, however it exits (`kill -9` included): a lock
  file left behind is never stale, and nothing needs cleaning up.
- The lock is per process and re-entrant: `inkstream serve` takes it at start-up for the life of
  the process and its event log takes it again when it opens (a count, one file descriptor).
- The descriptor is close-on-exec and never passed on, so a child process (the embedded projector,
  which only reads the event log and writes projections) does not hold the lock, and a restarted
  server is not locked out while an orphaned child of the one it replaces is still exiting.
- Readers (`inkstream history | replay | export --data-dir`, the projector child) take no lock:
  SQLite in WAL mode lets them read next to the writer.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from pathlib import Path

from engine.errors import DataDirInUse

LOCK_FILE = "inkstream.lock"

_held: dict[Path, DataDirLock] = {}  # resolved data dir -> this process's lock on it
_guard = threading.Lock()


class DataDirLock:
    """This process's exclusive lock on one data directory (re-entrant, counted)."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self.fd = fd
        self.count = 1

    def release(self) -> None:
        """Drop one hold; the last one unlocks the directory (a no-op once released)."""
        with _guard:
            if self.count == 0:
                return
            self.count -= 1
            if self.count == 0:
                _held.pop(self.directory, None)
                os.close(self.fd)  # closing the only descriptor releases the flock


def lock_data_dir(directory: Path, owner: str = "", url: str = "") -> DataDirLock:
    """Take the exclusive writer lock on `directory` (created if missing) or raise DataDirInUse.

    `owner` says what holds it ("inkstream serve") and `url` where it serves the HTTP API, if it
    does; both are written to the lock file with the pid, for the message a refused process shows.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = directory.resolve()
    with _guard:
        held = _held.get(key)
        if held is not None:
            held.count += 1
            return held
        path = key / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise DataDirInUse(directory, *_read_owner(path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n{owner}\n{url}\n".encode(), 0)
        except OSError:
            pass  # the lock is what counts; the pid is only for the message
        lock = DataDirLock(key, fd)
        _held[key] = lock
        return lock


def _read_owner(path: Path) -> tuple[int | None, str, str]:
    """The pid, description and URL the holder wrote (None, "", "" if unreadable or not written yet)."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return None, "", ""
    lines += [""] * (3 - len(lines))
    return (int(lines[0]) if lines[0].isdigit() else None), lines[1], lines[2]
