"""Specific errors the engine raises; each carries a message a user can act on."""

from __future__ import annotations


class InkstreamError(Exception):
    """Base class for every error Inkstream raises on purpose."""

    #: Short machine-readable reason, used in HTTP bodies, close reasons and metric labels.
    reason = "error"


class InvalidBoardId(InkstreamError):
    """A board id is not 1-128 characters of letters, digits, '-', '_', '.', '~'."""

    reason = "invalid_board_id"


class InvalidUpdate(InkstreamError):
    """Bytes that do not decode as a Yjs v1 update."""

    reason = "invalid_update"


class MissingDependencies(InvalidUpdate):
    """An update that builds on changes the board does not have (yet); it was not applied."""

    reason = "missing_dependencies"


class UpdateTooLarge(InkstreamError):
    """An update or frame larger than the configured limit."""

    reason = "too_large"


class BoardTooLarge(InkstreamError):
    """Accepting the update would grow the board past the configured limit."""

    reason = "board_too_large"


class BoardNotFound(InkstreamError):
    """The board has no accepted updates."""

    reason = "not_found"


class VersionNotFound(InkstreamError):
    """The requested version does not exist for that board."""

    reason = "version_not_found"


class StorageUnavailable(InkstreamError):
    """The event log could not durably store an update; it was not accepted."""

    reason = "storage_unavailable"


class DataDirInUse(InkstreamError):
    """Another process holds the embedded data directory's writer lock (engine.adapters.data_dir_lock)."""

    reason = "data_dir_in_use"

    def __init__(self, directory: object, pid: int | None = None, owner: str = "", url: str = "") -> None:
        self.directory = directory
        self.pid = pid
        self.owner = owner  # what the holder said it is, e.g. "inkstream serve"
        self.url = url  # where the holder serves the HTTP API, if it does
        super().__init__(self.explain())

    def explain(self, what_to_do: str | None = None) -> str:
        """One line: which directory, who holds it, what to do (default: stop it, or go through its --url)."""
        holder = ", ".join(p for p in (f"pid {self.pid}" if self.pid else "", self.owner) if p)
        if what_to_do is None:
            what_to_do = f"stop it, or use --url {self.url or 'URL'} to go through the running server"
        return (
            f"data directory {self.directory} is in use by another inkstream process"
            f"{f' ({holder})' if holder else ''}; {what_to_do}"
        )
