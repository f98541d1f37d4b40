"""dsd.protocol — the wire format between dsd clients and the daemon, sans-I/O.

A message is a ZeroMQ multipart message ``[msgpack header, raw body frames...]``. Requests
and completions travel as packed fixed-size little-endian records in body frames so the
daemon's native code reads a whole batch without a Python object per request. This package
only encodes, decodes and checks state: it never touches a socket or an event loop (the
daemon and the client library move the frames). docs/protocol.md is the byte-level spec.
"""

from ._connection import Connection, Role, State
from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._messages import (
    MAX_BATCH_RECORDS,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Batch,
    Bye,
    Cancel,
    CloseFile,
    CloseQueue,
    CompressionInfo,
    CreateQueue,
    DecodeToGpu,
    ErrorRecord,
    Completions,
    Error,
    FileOpened,
    GPU_REQUEST_FIELDS,
    GPU_RESULT_FIELDS,
    GpuBuffer,
    Hello,
    MemoryRegistered,
    Message,
    Ok,
    OpenFile,
    Ping,
    Pong,
    QueryCompression,
    QueryQueue,
    QueueCreated,
    QueueInfo,
    Probe,
    MAX_GPU_REQUESTS,
    RegisterMemory,
    ReleaseGpuBuffer,
    RetrieveErrorRecord,
    StatsReply,
    StatsRequest,
    Submit,
    TICKET_BYTES,
    UUID_BYTES,
    UnregisterMemory,
    Welcome,
    decode,
)
from ._handoff import (
    HANDOFF_SOCKET_FILE,
    HANDOFF_VERSION,
    TICKET_REPLY,
    TICKET_REQUEST,
    TicketReply,
    TicketRequest,
)
from ._records import (
    COMPLETION_RECORD,
    COMPLETION_RECORD_SIZE,
    REQUEST_RECORD,
    RECORD_LAYOUT_VERSION,
    REQUEST_RECORD_SIZE,
    CompletionRecord,
    Compression,
    BARRIER_OPS,
    Op,
    Priority,
    Reason,
    RequestRecord,
    SourceType,
    Status,
    iter_completions,
    iter_requests,
    pack_completions,
    pack_requests,
)
from ._hresult import HRESULT, hresult_name

__all__ = [
    "COMPLETION_RECORD", "COMPLETION_RECORD_SIZE", "REQUEST_RECORD", "HRESULT", "MAX_BATCH_RECORDS", "MESSAGE_TYPES", "PROTOCOL_VERSION",
    "RECORD_LAYOUT_VERSION", "REQUEST_RECORD_SIZE", "Batch", "Bye", "Cancel", "CloseFile", "CloseQueue", "CompressionInfo", "CreateQueue", "ErrorRecord", "CompletionRecord",
    "Completions", "BARRIER_OPS", "Compression", "Connection", "Priority", "Error", "FileOpened", "Hello", "LocalProtocolError",
    "MemoryRegistered", "Message", "Ok", "Op", "OpenFile", "Ping", "Pong", "Probe", "QueryCompression", "QueryQueue", "QueueCreated", "QueueInfo", "ProtocolError", "Reason",
    "RegisterMemory", "RemoteProtocolError", "RetrieveErrorRecord", "RequestRecord", "Role", "SourceType", "State", "StatsReply",
    "StatsRequest", "Status", "Submit", "UnregisterMemory", "Welcome", "decode", "hresult_name",
    "DecodeToGpu", "GPU_REQUEST_FIELDS", "GPU_RESULT_FIELDS", "GpuBuffer", "HANDOFF_SOCKET_FILE", "HANDOFF_VERSION",
    "MAX_GPU_REQUESTS", "ReleaseGpuBuffer", "TICKET_BYTES", "TICKET_REPLY", "TICKET_REQUEST", "TicketReply",
    "TicketRequest", "UUID_BYTES",
    "iter_completions", "iter_requests", "pack_completions", "pack_requests",
]
