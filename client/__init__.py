"""dsd.client — the client library for the dsd daemon.

``Client`` (blocking) and ``AsyncClient`` (trio) connect to the daemon (``DSD_ENDPOINT`` or the
default ipc socket), open files, register shared-memory regions as destinations, and send
reads in batches whose completions arrive as futures (``ReadRequest``). A thin layer over
``dsd.protocol``: every failure the daemon reports becomes a ``DsdError`` subclass carrying
the daemon's errno, HRESULT and message. ``decode_to_gpu`` leaves the bytes in a GPU buffer
handed over as an fd; ``dsd.client.vkimport`` (loaded on demand: it needs libvulkan) imports
it into the caller's own Vulkan device.
"""

from ._async import AsyncBatch, AsyncClient
from ._core import File, ReadRequest, Request
from ._errors import (
    AuthenticationError,
    Cancelled,
    ConnectionLost,
    DaemonUnavailable,
    DecompressionError,
    DsdError,
    EndOfFile,
    FileNotFound,
    GpuHandoffError,
    InvalidDestinationSize,
    InvalidMemoryQueuePriority,
    InvalidQueueCapacity,
    InvalidQueuePriority,
    InvalidRequest,
    InvalidSourceType,
    IsADirectory,
    PermissionDenied,
    ProtocolMismatch,
    QueueClosed,
    RemoteError,
    RequestTooLarge,
    WouldBlock,
)
from ._gpu import AsyncGpuBuffer, GpuBuffer, GpuRead, GpuResult
from ._queue import AsyncQueue, ErrorRecordInfo, Fence, Queue, QueueQuery, StatusArray
from ._shm import Region
from ._sync import Batch, Client

__all__ = [
    "AsyncBatch", "AsyncClient", "AsyncGpuBuffer", "GpuBuffer", "GpuHandoffError", "GpuRead", "GpuResult", "AsyncQueue", "AuthenticationError", "Batch", "Cancelled", "Client", "ConnectionLost",
    "DaemonUnavailable", "DecompressionError", "DsdError", "EndOfFile", "ErrorRecordInfo", "Fence", "File",
    "FileNotFound", "InvalidDestinationSize", "InvalidMemoryQueuePriority", "InvalidQueueCapacity", "InvalidQueuePriority", "InvalidRequest",
    "InvalidSourceType", "IsADirectory", "PermissionDenied", "ProtocolMismatch", "Queue", "QueueClosed",
    "QueueQuery", "ReadRequest", "Region", "RemoteError", "Request", "RequestTooLarge", "StatusArray", "WouldBlock",
]
