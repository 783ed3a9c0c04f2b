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
