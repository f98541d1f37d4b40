"""Message classes and their frame encoding.

A message is ``[header, body...]``: the header is a msgpack map with a ``type`` string and the
message's fields; bodies are raw frames (only BATCH and COMPLETIONS have them). Each class
declares its fields once (name, accepted types, default); encoding and decoding are driven
by that table, so every decoder rejects exactly what the spec in docs/protocol.md rejects.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields
from functools import cache
from typing import Any, ClassVar

import msgpack

from ._errors import LocalProtocolError, RemoteProtocolError
from ._records import COMPLETION_RECORD_SIZE, RECORD_LAYOUT_VERSION, REQUEST_RECORD_SIZE

PROTOCOL_VERSION = 1


@cache
def _header_fields(cls: type) -> tuple[tuple[Field, ...], frozenset[str], bool]:
    """A message class's header fields, their names and whether it has bodies; computed once per
    class, since ``dataclasses.fields`` rebuilds its tuple on every call and this is per message."""
    all_fields = fields(cls)
    header = tuple(f for f in all_fields if f.name != "bodies")
    return header, frozenset(f.name for f in header), len(header) != len(all_fields)

# Bounds on what a header may hold, so a hostile peer cannot make the decoder allocate much.
MAX_HEADER_BYTES = 1 << 20
MAX_BATCH_RECORDS = 1 << 20
MAX_NAMES_BYTES = 64 << 20
MAX_PATH_CHARS = 4096

_REQUIRED = object()


def _spec(types, default: Any = _REQUIRED, *, signed: bool = False, **kw):
    """A dataclass field that records which msgpack types its value may have (integers are
    non-negative unless ``signed``)."""
    meta = {"types": types, "signed": signed}
    if default is _REQUIRED:
        return field(metadata=meta, **kw)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


INT = (int,)
OPT_INT = (int, type(None))
STR = (str,)
OPT_STR = (str, type(None))
BOOL = (bool,)
MAP = (dict,)
LIST = (list,)
BIN = (bytes,)

# GPU handoff (DECODE_TO_GPU): requests per message, and the size of a ticket and of a UUID.
MAX_GPU_REQUESTS = 4096
GPU_REQUEST_FIELDS = ("file_id", "offset", "compressed_size", "compression", "size")
GPU_RESULT_FIELDS = ("offset", "size", "hresult")
TICKET_BYTES = 32
UUID_BYTES = 16


@dataclass(slots=True)
class Message:
    """Base of all messages. ``TYPE`` is the wire name; ``BODIES`` the allowed body frame counts."""

    TYPE: ClassVar[str] = ""
    FROM_CLIENT: ClassVar[bool] = True
    BODIES: ClassVar[tuple[int, ...]] = (0,)

    def header(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        for f in _header_fields(type(self))[0]:
            out[f.name] = getattr(self, f.name)
        return out

    def body_frames(self) -> list[Any]:
        return []

    def _check_bodies(self, bodies: list[Any]) -> None:  # overridden where bodies carry meaning
        """Validate body frames against header fields; raise ValueError with the reason."""

    def to_frames(self) -> list[Any]:
        """Encode: header frame plus body frames (bodies are passed through untouched, for copy=False)."""
        for f in _header_fields(type(self))[0]:
            value = getattr(self, f.name)
            if not isinstance(value, f.metadata["types"]) or (isinstance(value, bool) and bool not in f.metadata["types"]):
                raise LocalProtocolError(f"{self.TYPE}.{f.name}: {value!r} is not a valid value")
        try:
            header = msgpack.packb(self.header(), use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise LocalProtocolError(f"{self.TYPE}: cannot encode header: {exc}") from None
        bodies = self.body_frames()
        try:
            self._check_bodies(bodies)
        except ValueError as exc:
            raise LocalProtocolError(f"{self.TYPE}: {exc}") from None
        return [header, *bodies]


@dataclass(slots=True)
class Hello(Message):
    TYPE: ClassVar[str] = "HELLO"
    version: int = _spec(INT)
    client: str = _spec(STR)
    pid: int = _spec(INT)
    token: str | None = _spec(OPT_STR, None)
    seq: int = _spec(INT, 0)


@dataclass(slots=True)
class OpenFile(Message):
    TYPE: ClassVar[str] = "OPEN_FILE"
    seq: int = _spec(INT)
    path: str = _spec(STR)
    write: bool = _spec(BOOL, False)
    create: bool = _spec(BOOL, False)


@dataclass(slots=True)
class CloseFile(Message):
    TYPE: ClassVar[str] = "CLOSE_FILE"
    seq: int = _spec(INT)
    file_id: int = _spec(INT)


@dataclass(slots=True)
class RegisterMemory(Message):
    TYPE: ClassVar[str] = "REGISTER_MEMORY"
    seq: int = _spec(INT)
    name: str = _spec(STR)
    size: int = _spec(INT)


@dataclass(slots=True)
class UnregisterMemory(Message):
    TYPE: ClassVar[str] = "UNREGISTER_MEMORY"
    seq: int = _spec(INT)
    region_id: int = _spec(INT)


@dataclass(slots=True)
class Batch(Message):
    """Requests as packed records in body 0; optional UTF-8 names blob in body 1."""

    TYPE: ClassVar[str] = "BATCH"
    BODIES: ClassVar[tuple[int, ...]] = (1, 2)
    seq: int = _spec(INT)
    count: int = _spec(INT)
    layout: int = _spec(INT, RECORD_LAYOUT_VERSION)
    queue: int = _spec(INT, 0)
    submit: bool = _spec(BOOL, True)
    bodies: list[Any] = field(default_factory=list)

    def body_frames(self) -> list[Any]:
        return list(self.bodies)

    def _check_bodies(self, bodies: list[Any]) -> None:
        if self.layout != RECORD_LAYOUT_VERSION:
            raise ValueError(f"record layout {self.layout} is not supported (this side speaks {RECORD_LAYOUT_VERSION})")
        if not 0 <= self.count <= MAX_BATCH_RECORDS:
            raise ValueError(f"count {self.count} outside 0..{MAX_BATCH_RECORDS}")
        if len(bodies) not in self.BODIES:
            raise ValueError(f"expected 1 or 2 body frames, got {len(bodies)}")
        size = _frame_len(bodies[0])
        if size != self.count * REQUEST_RECORD_SIZE:
            raise ValueError(f"records frame is {size} bytes, count {self.count} needs {self.count * REQUEST_RECORD_SIZE}")
        if len(bodies) == 2 and _frame_len(bodies[1]) > MAX_NAMES_BYTES:
            raise ValueError("names frame too large")


@dataclass(slots=True)
class CreateQueue(Message):
    """A DirectStorage queue: capacity 128..8192 entries, priority -1 (LOW) .. 2 (REALTIME)."""

    TYPE: ClassVar[str] = "CREATE_QUEUE"
    seq: int = _spec(INT)
    capacity: int = _spec(INT)
    priority: int = _spec(INT, 0, signed=True)
    source_type: int = _spec(INT, 0)
    name: str = _spec(STR, "")
    ordered: bool = _spec(BOOL, False)


@dataclass(slots=True)
class CloseQueue(Message):
    TYPE: ClassVar[str] = "CLOSE_QUEUE"
    seq: int = _spec(INT)
    queue: int = _spec(INT)


@dataclass(slots=True)
class QueryQueue(Message):
    TYPE: ClassVar[str] = "QUERY_QUEUE"
    seq: int = _spec(INT)
    queue: int = _spec(INT)


@dataclass(slots=True)
class RetrieveErrorRecord(Message):
    TYPE: ClassVar[str] = "RETRIEVE_ERROR_RECORD"
    seq: int = _spec(INT)
    queue: int = _spec(INT)


@dataclass(slots=True)
class QueryCompression(Message):
    TYPE: ClassVar[str] = "QUERY_COMPRESSION"
    seq: int = _spec(INT)
    format: int = _spec(INT)


@dataclass(slots=True)
class Submit(Message):
    TYPE: ClassVar[str] = "SUBMIT"
    seq: int = _spec(INT)
    queue: int = _spec(INT, 0)


@dataclass(slots=True)
class Cancel(Message):
    """Cancel requests: by tag ``(tag & mask) == value``, by ``ids``, or ``all``."""

    TYPE: ClassVar[str] = "CANCEL"
    seq: int = _spec(INT)
    queue: int = _spec(INT, 0)
    mask: int = _spec(INT, 0)
    value: int = _spec(INT, 0)
    ids: list[int] = _spec(LIST, [])
    all: bool = _spec(BOOL, False)


@dataclass(slots=True)
class DecodeToGpu(Message):
    """Read (and decode) files into one daemon-owned, exportable GPU buffer. Each request is
    ``[file_id, offset, compressed_size, compression, size]`` (GPU_REQUEST_FIELDS)."""

    TYPE: ClassVar[str] = "DECODE_TO_GPU"
    seq: int = _spec(INT)
    requests: list[list[int]] = _spec(LIST)

    def _check_bodies(self, bodies: list[Any]) -> None:  # no bodies: this checks the request list's shape
        if not 1 <= len(self.requests) <= MAX_GPU_REQUESTS:
            raise ValueError(f"requests must hold 1..{MAX_GPU_REQUESTS} entries, got {len(self.requests)}")
        for i, req in enumerate(self.requests):
            if (not isinstance(req, list) or len(req) != len(GPU_REQUEST_FIELDS)
                    or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64 for v in req)):
                raise ValueError(f"request {i} must be a list of {len(GPU_REQUEST_FIELDS)} non-negative integers "
                                 f"{list(GPU_REQUEST_FIELDS)}, got {req!r}")


@dataclass(slots=True)
class ReleaseGpuBuffer(Message):
    TYPE: ClassVar[str] = "RELEASE_GPU_BUFFER"
    seq: int = _spec(INT)
    buffer_id: int = _spec(INT)


@dataclass(slots=True)
class StatsRequest(Message):
    TYPE: ClassVar[str] = "STATS"
    seq: int = _spec(INT)


@dataclass(slots=True)
class Ping(Message):
    TYPE: ClassVar[str] = "PING"
    seq: int = _spec(INT, 0)


@dataclass(slots=True)
class Bye(Message):
    TYPE: ClassVar[str] = "BYE"
    seq: int = _spec(INT, 0)


# --- daemon -> client -----------------------------------------------------------------------


@dataclass(slots=True)
class Welcome(Message):
    TYPE: ClassVar[str] = "WELCOME"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    version: int = _spec(INT)
    server: str = _spec(STR)
    session: int = _spec(INT)
    features: dict[str, Any] = _spec(MAP, {})


@dataclass(slots=True)
class FileOpened(Message):
    TYPE: ClassVar[str] = "FILE_OPENED"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    file_id: int = _spec(INT)
    size: int = _spec(INT)


@dataclass(slots=True)
class MemoryRegistered(Message):
    TYPE: ClassVar[str] = "MEMORY_REGISTERED"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    region_id: int = _spec(INT)


@dataclass(slots=True)
class Ok(Message):
    TYPE: ClassVar[str] = "OK"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    count: int = _spec(INT, 0)


@dataclass(slots=True)
class QueueCreated(Message):
    TYPE: ClassVar[str] = "QUEUE_CREATED"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    queue: int = _spec(INT)


@dataclass(slots=True)
class QueueInfo(Message):
    TYPE: ClassVar[str] = "QUEUE_INFO"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    queue: int = _spec(INT)
    capacity: int = _spec(INT)
    priority: int = _spec(INT, signed=True)
    source_type: int = _spec(INT)
    name: str = _spec(STR)
    unsubmitted: int = _spec(INT)     # entries held until SUBMIT
    in_flight: int = _spec(INT)       # submitted entries not yet completed
    empty_slots: int = _spec(INT)     # capacity - 1 - unsubmitted - in_flight (one slot is reserved)
    until_auto_submit: int = _spec(INT)


@dataclass(slots=True)
class ErrorRecord(Message):
    """Failures since the last retrieval and the first of them (None when there was none)."""

    TYPE: ClassVar[str] = "ERROR_RECORD"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    failure_count: int = _spec(INT)
    first_failure: dict[str, Any] | None = _spec((dict, type(None)), None)


@dataclass(slots=True)
class CompressionInfo(Message):
    TYPE: ClassVar[str] = "COMPRESSION_INFO"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    format: int = _spec(INT)
    flags: int = _spec(INT)           # DSTORAGE_COMPRESSION_SUPPORT bits
    detail: str = _spec(STR, "")


@dataclass(slots=True)
class GpuBuffer(Message):
    """DECODE_TO_GPU's reply: where the bytes are, what an importer needs, and the ticket that
    fetches the buffer's fd over the handoff socket. ``buffer_id`` 0: no buffer (nothing decoded)."""

    TYPE: ClassVar[str] = "GPU_BUFFER"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    buffer_id: int = _spec(INT)
    ticket: bytes = _spec(BIN)
    socket: str = _spec(STR)
    size: int = _spec(INT)                 # bytes from the buffer's start to the end of the last request
    allocation_size: int = _spec(INT)      # VkMemoryAllocateInfo.allocationSize to import with
    memory_type_index: int = _spec(INT)    # VkMemoryAllocateInfo.memoryTypeIndex to import with
    handle_type: int = _spec(INT)          # VkExternalMemoryHandleTypeFlagBits (1: OPAQUE_FD)
    device_uuid: bytes = _spec(BIN)
    driver_uuid: bytes = _spec(BIN)
    results: list[list[int]] = _spec(LIST)          # per request [offset, size, hresult] (GPU_RESULT_FIELDS)
    errors: list[dict[str, Any]] = _spec(LIST, [])  # per failed request: index, errno, hresult, reason, message

    def _check_bodies(self, bodies: list[Any]) -> None:  # no bodies: this checks the fields' shapes
        if self.buffer_id and len(self.ticket) != TICKET_BYTES:
            raise ValueError(f"ticket must be {TICKET_BYTES} bytes")
        if len(self.device_uuid) != UUID_BYTES or len(self.driver_uuid) != UUID_BYTES:
            raise ValueError(f"device_uuid and driver_uuid must be {UUID_BYTES} bytes")
        for i, res in enumerate(self.results):
            if (not isinstance(res, list) or len(res) != len(GPU_RESULT_FIELDS)
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in res)):
                raise ValueError(f"result {i} must be a list of {len(GPU_RESULT_FIELDS)} non-negative integers")
        for err in self.errors:
            if not isinstance(err, dict) or not isinstance(err.get("index"), int):
                raise ValueError("each error entry must be a map with an integer index")


@dataclass(slots=True)
class StatsReply(Message):
    TYPE: ClassVar[str] = "STATS_REPLY"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT)
    stats: dict[str, Any] = _spec(MAP, {})


@dataclass(slots=True)
class Pong(Message):
    TYPE: ClassVar[str] = "PONG"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int = _spec(INT, 0)


@dataclass(slots=True)
class Probe(Message):
    """Daemon -> client liveness probe after a connection event; clients ignore it."""

    TYPE: ClassVar[str] = "PROBE"
    FROM_CLIENT: ClassVar[bool] = False


@dataclass(slots=True)
class Completions(Message):
    """Packed completion records in body 0; ``errors`` holds one map per failed request."""

    TYPE: ClassVar[str] = "COMPLETIONS"
    FROM_CLIENT: ClassVar[bool] = False
    BODIES: ClassVar[tuple[int, ...]] = (1,)
    count: int = _spec(INT)
    layout: int = _spec(INT, RECORD_LAYOUT_VERSION)
    errors: list[dict[str, Any]] = _spec(LIST, [])
    bodies: list[Any] = field(default_factory=list)

    def body_frames(self) -> list[Any]:
        return list(self.bodies)

    def _check_bodies(self, bodies: list[Any]) -> None:
        if self.layout != RECORD_LAYOUT_VERSION:
            raise ValueError(f"record layout {self.layout} is not supported")
        if len(bodies) != 1:
            raise ValueError(f"expected 1 body frame, got {len(bodies)}")
        size = _frame_len(bodies[0])
        if size != self.count * COMPLETION_RECORD_SIZE:
            raise ValueError(f"records frame is {size} bytes, count {self.count} needs {self.count * COMPLETION_RECORD_SIZE}")
        for err in self.errors:
            if not isinstance(err, dict) or not isinstance(err.get("id"), int):
                raise ValueError("each error entry must be a map with an integer id")


@dataclass(slots=True)
class Error(Message):
    """A request failed as a whole (``seq`` names it; None when the peer's seq is unknown)."""

    TYPE: ClassVar[str] = "ERROR"
    FROM_CLIENT: ClassVar[bool] = False
    seq: int | None = _spec(OPT_INT)
    code: str = _spec(STR)
    message: str = _spec(STR)
    errno: int = _spec(INT, 0)
    hresult: int = _spec(INT, 0)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (Hello, OpenFile, CloseFile, RegisterMemory, UnregisterMemory, CreateQueue, CloseQueue, QueryQueue,
                RetrieveErrorRecord, QueryCompression, Batch, Submit, Cancel, DecodeToGpu, ReleaseGpuBuffer, StatsRequest,
                Ping, Bye, Welcome, FileOpened, MemoryRegistered, QueueCreated, QueueInfo, ErrorRecord, CompressionInfo,
                Ok, GpuBuffer, StatsReply, Pong, Probe, Completions, Error)
}


def _frame_len(frame: Any) -> int:
    if hasattr(frame, "buffer"):  # zmq.Frame
        return len(frame.buffer)
    return len(memoryview(frame))


def _frame_bytes(frame: Any) -> bytes | memoryview:
    if hasattr(frame, "buffer"):
        return frame.buffer
    return frame


def decode(frames: list[Any]) -> Message:
    """Decode ``[header, body...]`` into a message; anything invalid raises RemoteProtocolError."""
    if not isinstance(frames, (list, tuple)) or not frames:
        raise RemoteProtocolError("empty message: expected a msgpack header frame")
    raw = _frame_bytes(frames[0])
    try:
        raw_len = len(raw)
    except TypeError:
        raise RemoteProtocolError("header frame is not a byte buffer") from None
    if raw_len > MAX_HEADER_BYTES:
        raise RemoteProtocolError(f"header frame of {raw_len} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = msgpack.unpackb(raw, raw=False, strict_map_key=True, max_str_len=MAX_HEADER_BYTES,
                                 max_bin_len=MAX_HEADER_BYTES, max_array_len=1 << 16, max_map_len=1 << 10)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise RemoteProtocolError(f"header frame is not valid msgpack: {exc}") from None
    if not isinstance(header, dict):
        raise RemoteProtocolError(f"header must be a msgpack map, got {type(header).__name__}")
    kind = header.get("type")
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RemoteProtocolError(f"unknown message type {kind!r}")
    kwargs: dict[str, Any] = {}
    header_fields, names, has_bodies = _header_fields(cls)
    for f in header_fields:
        if f.name in header:
            value = header[f.name]
            types = f.metadata["types"]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise RemoteProtocolError(f"{kind}.{f.name} has invalid value {value!r}")
            if isinstance(value, int) and not isinstance(value, bool) and value < 0 and not f.metadata["signed"]:
                raise RemoteProtocolError(f"{kind}.{f.name} must not be negative")
            kwargs[f.name] = value
        elif f.default is not MISSING or f.default_factory is not MISSING:
            continue
        else:
            raise RemoteProtocolError(f"{kind} lacks required field {f.name!r}")
    extra = set(header) - names - {"type"}
    if extra:
        raise RemoteProtocolError(f"{kind} has unknown fields {sorted(extra)}")
    bodies = list(frames[1:])
    if len(bodies) not in cls.BODIES:
        raise RemoteProtocolError(f"{kind} expects {' or '.join(map(str, cls.BODIES))} body frames, got {len(bodies)}")
    msg = cls(**kwargs)
    if has_bodies:
        msg.bodies = bodies  # type: ignore[attr-defined]
    try:
        msg._check_bodies(bodies)
    except ValueError as exc:
        raise RemoteProtocolError(f"{kind}: {exc}") from None
    except TypeError:
        raise RemoteProtocolError(f"{kind}: body frames must be byte buffers") from None
    if isinstance(msg, OpenFile) and len(msg.path) > MAX_PATH_CHARS:
        raise RemoteProtocolError(f"OPEN_FILE path longer than {MAX_PATH_CHARS} characters")
    return msg

