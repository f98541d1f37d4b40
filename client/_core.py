"""The client's protocol logic, free of I/O, shared by the blocking and the trio client.

``ClientCore`` builds frames for requests and digests frames from the daemon: replies settle
pending calls by ``seq``, COMPLETIONS settle read requests by id. The transports only move frames.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

from dsd.protocol import (
    COMPLETION_RECORD,
    PROTOCOL_VERSION,
    REQUEST_RECORD,
    Batch,
    Completions,
    Connection,
    Error,
    Hello,
    Message,
    Probe,
    RemoteProtocolError,
    Role,
    Status,
    Welcome,
)
from dsd.protocol._records import REQUEST_RECORD_SIZE, U32_MAX, U64_MAX, Op

from ._errors import Cancelled, DsdError, ProtocolMismatch, error_from_record, error_from_reply


class File:
    """An open file on the daemon's side. Closing it is the client's job (``client.close_file``)."""

    def __init__(self, file_id: int, path: str, size: int) -> None:
        self.id = file_id
        self.path = path
        self.size = size
        self.closed = False

    def __repr__(self) -> str:
        return f"<File id={self.id} {self.path!r} size={self.size}{' closed' if self.closed else ''}>"


class Request:
    """A future for one queue entry (a read, a write, or a barrier such as STATUS or SIGNAL):
    ``done()``, then ``result()`` (bytes moved) or ``exception()``."""

    __slots__ = ("id", "op", "owner", "file", "region", "src_id", "src_offset", "src_size", "dst_id", "dst_offset",
                 "dst_size", "compression", "source_type", "uncompressed_size", "level", "tag", "name", "status",
                 "bytes", "hresult", "error", "on_done", "target")

    def __init__(self, rid: int, owner: Any, *, op: int, src_id: int, src_offset: int, src_size: int, dst_id: int,
                 dst_offset: int, dst_size: int, compression: int = 0, source_type: int = 0,
                 uncompressed_size: int = 0, level: int = 0, tag: int = 0, name: str | None = None,
                 file: File | None = None, region: Any = None) -> None:
        self.id = rid
        self.op = op
        self.owner = owner
        self.file = file              # the file read from or written to (None for barriers)
        self.region = region          # the region read into (READ) or written from (WRITE)
        self.src_id, self.src_offset, self.src_size = src_id, src_offset, src_size
        self.dst_id, self.dst_offset, self.dst_size = dst_id, dst_offset, dst_size
        self.compression = compression
        self.source_type = source_type
        self.uncompressed_size = uncompressed_size
        self.level = level
        self.tag = tag
        self.name = name
        self.status: Status | None = None
        self.bytes = 0
        self.hresult = 0
        self.error: DsdError | None = None
        self.on_done: Callable[[Request], None] | None = None
        self.target: Any = None       # STATUS: the StatusArray it fills; SIGNAL: the Fence it raises

    # read-request vocabulary
    @property
    def offset(self) -> int:
        return self.src_offset

    @property
    def size(self) -> int:
        return self.dst_size

    @property
    def region_offset(self) -> int:
        return self.dst_offset

    def done(self) -> bool:
        return self.status is not None

    @property
    def cancelled(self) -> bool:
        return self.status == Status.CANCELLED

    def exception(self) -> DsdError | None:
        if self.status is None:
            raise RuntimeError(f"request {self.id} has not completed")
        return self.error

    def result(self) -> int:
        """Bytes moved; raises the request's error. Only valid once ``done()``."""
        if self.status is None:
            raise RuntimeError(f"request {self.id} has not completed; wait for it first")
        if self.error is not None:
            raise self.error
        return self.bytes

    def data(self) -> memoryview:
        """The destination bytes inside the region (valid while the region is)."""
        self.result()
        return self.region.view[self.dst_offset:self.dst_offset + self.bytes]

    def __repr__(self) -> str:
        state = "pending" if self.status is None else self.status.name.lower()
        what = self.file.path if self.file is not None else f"op {self.op}"
        return f"<Request {self.id} {what} {state}>"


ReadRequest = Request  # the name the first client API used


def read_request(rid: int, owner: Any, file: File, offset: int, size: int, region: Any, region_offset: int, *,
                 tag: int = 0, name: str | None = None, compression: int = 0, uncompressed_size: int = 0,
                 src_size: int | None = None) -> Request:
    """A FILE-source read; compressed reads take ``src_size`` compressed bytes and fill ``size``."""
    return Request(rid, owner, op=Op.READ, src_id=file.id, src_offset=offset,
                   src_size=size if src_size is None else src_size, dst_id=region.id, dst_offset=region_offset,
                   dst_size=size, compression=compression, uncompressed_size=uncompressed_size, tag=tag, name=name,
                   file=file, region=region)


@dataclass
class Pending:
    """A call awaiting its reply (matched by seq)."""

    expect: tuple[type, ...]
    reply: Message | None = None
    error: DsdError | None = None
    waker: Callable[[], None] | None = None

    @property
    def done(self) -> bool:
        return self.reply is not None or self.error is not None


@dataclass
class ClientCore:
    name: str
    pid: int
    token: str | None = None
    conn: Connection = field(default_factory=lambda: Connection(Role.CLIENT))
    pending: dict[int, Pending] = field(default_factory=dict)
    requests: dict[int, Request] = field(default_factory=dict)
    orphan_errors: list[DsdError] = field(default_factory=list)
    welcome: Message | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def new_request_id(self) -> int:
        return next(self._ids)

    def hello(self) -> tuple[int, list[Any]]:
        seq = self.conn.next_seq()
        frames = self.conn.send(Hello(version=PROTOCOL_VERSION, client=self.name, pid=self.pid, token=self.token,
                                      seq=seq))
        self.pending[seq] = Pending((Welcome,))
        return seq, frames

    def call(self, make: Callable[[int], Message], *expect: type) -> tuple[int, list[Any]]:
        """Frames for a request message built with a fresh seq; its reply settles pending[seq]."""
        seq = self.conn.next_seq()
        frames = self.conn.send(make(seq))
        self.pending[seq] = Pending(expect)
        return seq, frames

    def batch_frames(self, requests: list[Request], *, submit: bool, queue: int = 0) -> list[Any]:
        """Pack requests into one BATCH (records + names frames) and track them."""
        records = bytearray(REQUEST_RECORD_SIZE * len(requests))
        names = bytearray()
        pack = REQUEST_RECORD.pack_into
        for i, req in enumerate(requests):
            name_off = name_len = 0
            if req.name:
                encoded = req.name.encode()[:64]
                name_off, name_len = len(names), len(encoded)
                names += encoded
            pack(records, i * REQUEST_RECORD_SIZE, req.id, req.tag, req.src_offset, req.src_size, req.src_id,
                 req.dst_offset, req.dst_size, req.dst_id, req.uncompressed_size, req.op, req.compression,
                 req.source_type, 0, name_off, name_len, req.level, 0)
        seq = self.conn.next_seq()
        bodies = [records, names] if names else [records]
        frames = self.conn.send(Batch(seq=seq, count=len(requests), submit=submit, queue=queue, bodies=bodies))
        for req in requests:
            self.requests[req.id] = req
        return frames

    def receive(self, frames: list[Any]) -> None:
        try:
            msg = self.conn.receive(frames)
        except RemoteProtocolError as exc:
            raise ProtocolMismatch(f"daemon sent an invalid message: {exc}") from None
        if isinstance(msg, Completions):
            self._complete(msg)
        elif isinstance(msg, Probe):
            pass
        elif isinstance(msg, Error):
            error = error_from_reply(msg.code, msg.message, msg.errno, msg.hresult)
            pending = self.pending.pop(msg.seq, None) if msg.seq is not None else None
            if pending is None:
                self.orphan_errors.append(error)
            else:
                pending.error = error
                if pending.waker:
                    pending.waker()
        else:
            seq = getattr(msg, "seq", None)
            pending = self.pending.pop(seq, None) if seq is not None else None
            if pending is None:
                return  # a reply nobody waits for any more (e.g. after a timeout)
            if not isinstance(msg, pending.expect):
                pending.error = ProtocolMismatch(f"expected {pending.expect[0].TYPE}, daemon sent {msg.TYPE}")
            else:
                pending.reply = msg
            if pending.waker:
                pending.waker()

    def _complete(self, msg: Completions) -> None:
        errors = {e["id"]: e for e in msg.errors} if msg.errors else {}
        body = msg.bodies[0]
        view = body.buffer if hasattr(body, "buffer") else body
        for rid, nbytes, hresult, err, status, reason in COMPLETION_RECORD.iter_unpack(view):
            req = self.requests.pop(rid, None)
            if req is None:
                continue
            req.bytes = nbytes
            req.hresult = hresult
            if status == Status.OK:
                req.status = Status.OK
            elif status == Status.CANCELLED:
                req.status = Status.CANCELLED
                req.error = Cancelled(f"request {rid} was cancelled", errno=125, hresult=hresult, reason=reason)
            else:
                req.status = Status.FAILED
                record = errors.get(rid) or {"id": rid, "errno": err, "hresult": hresult, "reason": reason,
                                             "message": f"request {rid} failed (reason {reason}, errno {err})"}
                req.error = error_from_record(record)
            if req.on_done is not None:
                req.on_done(req)

    def fail_everything(self, error: DsdError) -> None:
        """The connection is gone: settle every outstanding call and request with ``error``."""
        for pending in self.pending.values():
            pending.error = error
            if pending.waker:
                pending.waker()
        self.pending.clear()
        requests, self.requests = self.requests, {}
        for req in requests.values():
            req.status = Status.FAILED
            req.error = error
            if req.on_done is not None:
                req.on_done(req)


def check_read_args(file: File, offset: int, size: int, region: Any, region_offset: int) -> None:
    """Client-side sanity checks that give an immediate, clear error (the daemon checks again)."""
    if file.closed:
        raise ValueError(f"{file!r} is closed")
    if region.id is None or region.closed:
        raise ValueError(f"{region!r} is not registered")
    if not 0 <= offset <= U64_MAX:
        raise ValueError(f"offset {offset} out of range")
    if not 0 <= size <= U32_MAX:
        raise ValueError(f"size {size} out of range (one request moves at most 4 GiB - 1)")
    if region_offset < 0:
        raise ValueError(f"region offset {region_offset} is negative")


# One request moves at most 4 GiB - 1 (u32 sizes, as in DirectStorage); big reads are split.
MAX_CHUNK = 1 << 30
SCRATCH_MIN = 1 << 20


def chunks(size: int) -> list[tuple[int, int]]:
    """(position, length) pieces of a read of ``size`` bytes; a 0-byte read is one empty piece."""
    return [(pos, min(MAX_CHUNK, size - pos)) for pos in range(0, size, MAX_CHUNK)] or [(0, 0)]


def scratch_size(size: int) -> int:
    """The client's scratch region grows in powers of two, from 1 MiB."""
    return max(SCRATCH_MIN, 1 << max(size - 1, 1).bit_length())
