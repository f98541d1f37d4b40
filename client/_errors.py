"""Exceptions raised by dsd.client. ``DsdError`` is the root; failures the daemon reports carry
its errno, HRESULT, message and (for requests) the request that failed."""

from __future__ import annotations

import errno as _errno
from typing import Any

from dsd.protocol import HRESULT, Reason, hresult_name


class DsdError(Exception):
    """Root of all dsd.client errors."""


class DaemonUnavailable(DsdError):
    """No daemon answered at the endpoint (not running, wrong endpoint, or timed out)."""


class ConnectionLost(DsdError):
    """The connection to the daemon broke or the client was closed with work outstanding."""


class ProtocolMismatch(DsdError):
    """Client and daemon speak different protocol versions, or the daemon sent garbage."""


class AuthenticationError(DsdError):
    """A TCP client's token was missing or wrong."""


class WouldBlock(DsdError):
    """A ``*_nowait`` call would have had to wait."""


class RemoteError(DsdError):
    """The daemon refused or failed an operation."""

    def __init__(self, message: str, *, errno: int = 0, hresult: int = 0, code: str = "",
                 request: dict[str, Any] | None = None, path: str | None = None, reason: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno
        self.hresult = hresult
        self.code = code
        self.request = request
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return self.message

    @property
    def hresult_name(self) -> str:
        return hresult_name(self.hresult)


class FileNotFound(RemoteError):
    """ENOENT."""


class PermissionDenied(RemoteError):
    """EACCES / EPERM."""


class IsADirectory(RemoteError):
    """EISDIR: dsd reads files, not directories."""


class EndOfFile(RemoteError):
    """The requested range extends past the end of the file."""


class InvalidRequest(RemoteError):
    """The request itself is wrong: unknown file or region, out-of-bounds destination, size mismatch."""


class Cancelled(RemoteError):
    """The request was cancelled before it ran (not a failure in DirectStorage's sense)."""


class DecompressionError(RemoteError):
    """E_DSTORAGE_DECOMPRESSION_ERROR: the compressed source is corrupt."""


class RequestTooLarge(InvalidRequest):
    """E_DSTORAGE_REQUEST_TOO_LARGE: larger than the daemon's staging buffer."""


class InvalidDestinationSize(InvalidRequest):
    """E_DSTORAGE_INVALID_DESTINATION_SIZE: source, destination and uncompressed sizes disagree."""


class InvalidSourceType(InvalidRequest):
    """E_DSTORAGE_INVALID_SOURCE_TYPE: a memory request on a file queue or the reverse."""


class InvalidQueueCapacity(RemoteError):
    """E_DSTORAGE_INVALID_QUEUE_CAPACITY: capacity outside 128..8192."""


class InvalidQueuePriority(RemoteError):
    """E_DSTORAGE_INVALID_QUEUE_PRIORITY."""


class InvalidMemoryQueuePriority(RemoteError):
    """E_DSTORAGE_INVALID_MEMORY_QUEUE_PRIORITY: MEMORY-source queues must be REALTIME."""


class QueueClosed(RemoteError):
    """E_DSTORAGE_QUEUE_CLOSED: the queue was closed (or never existed)."""


class GpuHandoffError(RemoteError):
    """A GPU buffer could not be made, handed over or imported; ``code`` says which step:
    GPU_UNAVAILABLE, HANDOFF_UNSUPPORTED (a TCP client), EXPORT_LIMIT, UNKNOWN_BUFFER, TICKET
    (the handoff socket refused the ticket), DEVICE_MISMATCH, IMPORT_FAILED, NO_FD."""


_HANDOFF_CODES = frozenset({"GPU_UNAVAILABLE", "HANDOFF_UNSUPPORTED", "EXPORT_LIMIT", "UNKNOWN_BUFFER"})


_BY_ERRNO = {_errno.ENOENT: FileNotFound, _errno.EACCES: PermissionDenied, _errno.EPERM: PermissionDenied,
             _errno.EISDIR: IsADirectory}
_BY_REASON = {Reason.EOF: EndOfFile, Reason.BAD_FILE: InvalidRequest, Reason.BAD_REGION: InvalidRequest,
              Reason.REGION_BOUNDS: InvalidRequest, Reason.SIZE_MISMATCH: InvalidRequest,
              Reason.RESERVED: InvalidRequest, Reason.CANCELLED: Cancelled}


_BY_HRESULT = {HRESULT.E_DSTORAGE_END_OF_FILE: EndOfFile, HRESULT.E_DSTORAGE_DECOMPRESSION_ERROR: DecompressionError,
               HRESULT.E_DSTORAGE_REQUEST_TOO_LARGE: RequestTooLarge,
               HRESULT.E_DSTORAGE_INVALID_DESTINATION_SIZE: InvalidDestinationSize,
               HRESULT.E_DSTORAGE_INVALID_SOURCE_TYPE: InvalidSourceType,
               HRESULT.E_DSTORAGE_INVALID_QUEUE_CAPACITY: InvalidQueueCapacity,
               HRESULT.E_DSTORAGE_INVALID_QUEUE_PRIORITY: InvalidQueuePriority,
               HRESULT.E_DSTORAGE_INVALID_MEMORY_QUEUE_PRIORITY: InvalidMemoryQueuePriority,
               HRESULT.E_DSTORAGE_QUEUE_CLOSED: QueueClosed}


def error_class(hresult: int, errno: int, reason: int = 0) -> type[RemoteError]:
    """The most specific exception: by DirectStorage HRESULT, then by reason, then by errno."""
    return _BY_HRESULT.get(hresult) or _BY_REASON.get(reason) or _BY_ERRNO.get(errno, RemoteError)


def error_from_reply(code: str, message: str, errno: int, hresult: int) -> DsdError:
    if code == "AUTH_FAILED":
        return AuthenticationError(message)
    if code == "VERSION_MISMATCH":
        return ProtocolMismatch(message)
    if code in _HANDOFF_CODES:
        return GpuHandoffError(message, errno=errno, hresult=hresult, code=code)
    return error_class(hresult, errno)(message, errno=errno, hresult=hresult, code=code)


def error_from_record(record: dict[str, Any]) -> RemoteError:
    reason = record.get("reason", 0)
    err = record.get("errno", 0)
    cls = error_class(record.get("hresult", 0), err, reason)
    return cls(str(record.get("message", "request failed")), errno=err, hresult=record.get("hresult", 0),
               request=record.get("request"), path=record.get("path"), reason=reason)
