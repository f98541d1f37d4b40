"""DirectStorage queues for the blocking client.

A ``Queue`` records entries locally (as DirectStorage's EnqueueRequest does) and sends them on
``submit()`` — or by itself once unsubmitted entries reach half the capacity. Every entry holds
a slot until it completes; enqueueing into a full queue waits for a slot (``*_nowait`` raises
``WouldBlock`` instead). Barrier entries (status, signal, event, fsync) complete only after
every earlier entry of the queue, as the daemon guarantees.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterator

import trio

from dsd.protocol import (
    CloseQueue,
    CreateQueue,
    ErrorRecord,
    Ok,
    Op,
    Priority,
    QueryQueue,
    QueueCreated,
    QueueInfo,
    RetrieveErrorRecord,
    SourceType,
    Status,
)
from dsd.protocol._hresult import HRESULT

from ._core import File, Request, check_read_args, read_request
from ._errors import Cancelled, ConnectionLost, QueueClosed, RemoteError, WouldBlock, error_from_record
from ._shm import Region

E_PENDING = HRESULT.E_PENDING


class StatusArray:
    """Client-side status slots that STATUS entries fill (IDStorageStatusArray)."""

    def __init__(self, capacity: int, name: str = "") -> None:
        if capacity <= 0:
            raise ValueError("a status array needs at least one slot")
        self.name = name
        self._values = [HRESULT.S_OK] * capacity

    def __len__(self) -> int:
        return len(self._values)

    def is_complete(self, index: int) -> bool:
        return self._values[index] != E_PENDING

    def get_hresult(self, index: int) -> int:
        """E_PENDING until the entry completes, then S_OK or the first failure's HRESULT."""
        return int(self._values[index])

    def _set(self, index: int, value: int) -> None:
        self._values[index] = value


class Fence:
    """The value SIGNAL entries raise once every earlier entry of their queue completed."""

    def __init__(self, initial: int = 0) -> None:
        self.completed_value = initial

    def _signal(self, value: int) -> None:
        self.completed_value = max(self.completed_value, value)


@dataclass(frozen=True)
class QueueQuery:
    """IDStorageQueue::Query: the queue's description plus its free slots."""

    capacity: int
    priority: Priority
    source_type: SourceType
    name: str
    empty_slots: int
    requests_until_auto_submit: int
    in_flight: int


@dataclass(frozen=True)
class ErrorRecordInfo:
    failure_count: int
    first_failure: RemoteError | None


class _QueueBase:
    """What the blocking and the trio queue share: entry records, slot accounting, local cancel."""

    def __init__(self, client: Any, qid: int, *, capacity: int, priority: int, source_type: int, name: str) -> None:
        self._client = client
        self.id = qid
        self.capacity = capacity
        self.priority = Priority(priority)
        self.source_type = SourceType(source_type)
        self.name = name
        self._unsubmitted: list[Request] = []
        self._outstanding = 0          # enqueued, not yet completed (submitted or not)
        self._completed: list[Request] = []
        self.closed = False

    # -- slots -----------------------------------------------------------------------------

    def _full(self) -> bool:
        return self._outstanding >= self.capacity - 1  # one slot stays reserved, as in DirectStorage

    def _accept(self, req: Request) -> Request:
        """Record an entry (the caller made room); submits at half capacity like DirectStorage."""
        if self.closed:
            raise QueueClosed(f"queue {self.id} is closed", hresult=HRESULT.E_DSTORAGE_QUEUE_CLOSED)
        if self._full():
            raise WouldBlock(f"queue {self.id} is full ({self.capacity - 1} entries outstanding)")
        req.on_done = self._on_done
        self._unsubmitted.append(req)
        self._outstanding += 1
        if len(self._unsubmitted) >= self.capacity // 2:
            self.submit()
        return req

    def _on_done(self, req: Request) -> None:
        self._outstanding -= 1
        self._completed.append(req)
        if req.op == Op.STATUS:
            req.target._set(req.dst_offset, req.hresult if req.status == Status.OK else HRESULT.E_ABORT)
        elif req.op == Op.SIGNAL and req.status == Status.OK:
            req.target._signal(req.dst_offset)

    def _new_id(self) -> int:
        return self._client._core.new_request_id()

    def submit(self) -> None:
        if not self._unsubmitted or self.closed:
            return
        entries, self._unsubmitted = self._unsubmitted, []
        self._client._send(self._client._core.batch_frames(entries, submit=True, queue=self.id))

    # -- entries -----------------------------------------------------------------------------

    def _read(self, file: File, offset: int, size: int, region: Region, region_offset: int = 0, *,
              compression: int = 0, compressed_size: int | None = None, tag: int = 0,
              name: str | None = None) -> Request:
        """Read ``size`` bytes (or, compressed, ``compressed_size`` bytes decoding to ``size``)."""
        check_read_args(file, offset, size, region, region_offset)
        return read_request(self._new_id(), self, file, offset, size, region, region_offset, tag=tag, name=name,
                            compression=compression, uncompressed_size=size if compression else 0,
                            src_size=compressed_size)

    def _memory_read(self, source: Region, source_offset: int, size: int, region: Region, region_offset: int = 0, *,
                     compression: int = 0, compressed_size: int | None = None, tag: int = 0,
                     name: str | None = None) -> Request:
        """A MEMORY-source request: copy (or decode) from one registered region into another."""
        return Request(self._new_id(), self, op=Op.READ, source_type=SourceType.MEMORY, src_id=source.id,
                       src_offset=source_offset, src_size=size if compressed_size is None else compressed_size,
                       dst_id=region.id, dst_offset=region_offset, dst_size=size, compression=compression,
                       uncompressed_size=size if compression else 0, tag=tag, name=name, region=region)

    def _write(self, region: Region, region_offset: int, size: int, file: File, file_offset: int, *,
               compression: int = 0, level: int = 0, max_size: int = 0, tag: int = 0,
               name: str | None = None) -> Request:
        """Write region bytes to a file opened for writing, optionally compressing them first."""
        return Request(self._new_id(), self, op=Op.WRITE, source_type=SourceType.MEMORY, src_id=region.id,
                       src_offset=region_offset, src_size=size, dst_id=file.id, dst_offset=file_offset,
                       dst_size=max_size if compression else size, compression=compression,
                       uncompressed_size=size if compression else 0, level=level, tag=tag, name=name, file=file,
                       region=region)

    def _barrier(self, op: Op, value: int = 0, *, dst_id: int = 0, target: Any = None, file: File | None = None
                 ) -> Request:
        req = Request(self._new_id(), self, op=op, src_id=0, src_offset=0, src_size=0, dst_id=dst_id,
                      dst_offset=value, dst_size=0, file=file)
        req.target = target
        return req

    def _status(self, array: StatusArray, index: int) -> Request:
        """Fills ``array[index]`` with the first failure since the previous status entry (or S_OK)."""
        if not 0 <= index < len(array):
            raise IndexError(f"status index {index} outside the array of {len(array)}")
        array._set(index, E_PENDING)
        return self._barrier(Op.STATUS, index, target=array)

    # -- cancel / query ----------------------------------------------------------------------

    def _cancel_local(self, match) -> int:
        """Unsubmitted entries never reached the daemon: cancel them here."""
        keep, count = [], 0
        for req in self._unsubmitted:
            if req.op not in (Op.STATUS, Op.SIGNAL, Op.EVENT, Op.FSYNC) and match(req):
                req.status = Status.CANCELLED
                req.hresult = HRESULT.E_ABORT
                req.error = Cancelled(f"request {req.id} was cancelled", errno=125, hresult=HRESULT.E_ABORT)
                self._on_done(req)
                count += 1
            else:
                keep.append(req)
        self._unsubmitted = keep
        return count

    def _query(self, info: QueueInfo) -> QueueQuery:
        held = len(self._unsubmitted)
        return QueueQuery(self.capacity, self.priority, self.source_type, self.name,
                          empty_slots=max(self.capacity - 1 - self._outstanding, 0),
                          requests_until_auto_submit=max(self.capacity // 2 - held - info.unsubmitted, 0),
                          in_flight=info.in_flight)

    def _close_local(self) -> None:
        """Forget every entry: after close returns, nothing of this queue completes."""
        self.closed = True
        pending = [r for r in self._client._core.requests.values() if r.owner is self] + self._unsubmitted
        self._unsubmitted = []
        for req in pending:
            self._client._core.requests.pop(req.id, None)
            req.on_done = None


class Queue(_QueueBase):
    """One DirectStorage queue on the daemon, blocking API. Create with ``Client.create_queue``.
    ``enqueue_*`` wait for a free slot; ``enqueue_read_nowait`` raises ``WouldBlock`` instead."""

    def _enqueue(self, req: Request, *, block: bool = True) -> Request:
        if block and self._full() and not self.closed:
            self._wait(lambda: not self._full(), None, "a free slot")
        return self._accept(req)

    def _wait(self, done, timeout: float | None, what: str) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            if self._unsubmitted:
                self.submit()  # entries waiting for a submit would never complete
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"queue {self.id}: timed out waiting for {what}")
            self._client._pump_or_probe(min(left, 1.0) if left is not None else 1.0)

    def enqueue_read(self, *args: Any, block: bool = True, **kw: Any) -> Request:
        return self._enqueue(self._read(*args, **kw), block=block)

    def enqueue_read_nowait(self, *args: Any, **kw: Any) -> Request:
        return self.enqueue_read(*args, block=False, **kw)

    def enqueue_memory_read(self, *args: Any, block: bool = True, **kw: Any) -> Request:
        return self._enqueue(self._memory_read(*args, **kw), block=block)

    def enqueue_write(self, *args: Any, block: bool = True, **kw: Any) -> Request:
        return self._enqueue(self._write(*args, **kw), block=block)

    def enqueue_status(self, array: StatusArray, index: int) -> Request:
        return self._enqueue(self._status(array, index))

    def enqueue_signal(self, fence: Fence, value: int) -> Request:
        return self._enqueue(self._barrier(Op.SIGNAL, value, target=fence))

    def enqueue_event(self) -> Request:
        """An entry that completes (like a set event) after every earlier entry."""
        return self._enqueue(self._barrier(Op.EVENT))

    def enqueue_fsync(self, file: File) -> Request:
        """Flush ``file`` once every earlier entry (e.g. writes) completed."""
        return self._enqueue(self._barrier(Op.FSYNC, dst_id=file.id, file=file))

    def wait_idle(self, timeout: float | None = None) -> None:
        """Submit, then wait until every entry enqueued so far completed."""
        self._wait(lambda: not self._outstanding, timeout, f"{self._outstanding} entries")

    def wait(self, req: Request, timeout: float | None = None) -> Request:
        self._wait(req.done, timeout, f"request {req.id}")
        return req

    def as_completed(self, timeout: float | None = None) -> Iterator[Request]:
        """Submit, then yield entries as they complete until none is outstanding."""
        self.submit()
        while True:
            while self._completed:
                yield self._completed.pop(0)
            if not self._outstanding:
                return
            self._wait(lambda: bool(self._completed) or not self._outstanding, timeout, "a completion")

    def cancel(self, mask: int, value: int) -> int:
        """CancelRequestsWithTag: best effort; cancelled requests complete as CANCELLED, not failed."""
        local = self._cancel_local(lambda r: (r.tag & mask) == value)
        return local + self._client.cancel(queue=self.id, mask=mask, value=value)

    def cancel_request(self, req: Request) -> int:
        local = self._cancel_local(lambda r: r is req)
        return local + (0 if local else self._client.cancel(queue=self.id, ids=[req.id]))

    def cancel_all(self) -> int:
        local = self._cancel_local(lambda r: True)
        return local + self._client.cancel(queue=self.id, all=True)

    def query(self) -> QueueQuery:
        return self._query(self._client._call(lambda seq: QueryQueue(seq=seq, queue=self.id), QueueInfo,
                                              what="QUERY_QUEUE"))

    def retrieve_error_record(self) -> ErrorRecordInfo:
        reply: ErrorRecord = self._client._call(lambda seq: RetrieveErrorRecord(seq=seq, queue=self.id), ErrorRecord,
                                                what="RETRIEVE_ERROR_RECORD")
        return ErrorRecordInfo(reply.failure_count, error_from_record(reply.first_failure) if reply.first_failure
                               else None)

    def close(self) -> None:
        """After this returns, no entry of this queue completes any more (even work in flight)."""
        if self.closed:
            return
        self._close_local()
        try:
            self._client._call(lambda seq: CloseQueue(seq=seq, queue=self.id), Ok, what="CLOSE_QUEUE")
        except ConnectionLost:
            pass

    def __enter__(self) -> "Queue":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncQueue(_QueueBase):
    """The same queue for ``AsyncClient``: enqueueing into a full queue awaits a free slot."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._changed = trio.Event()

    def _on_done(self, req: Request) -> None:
        super()._on_done(req)
        self._changed.set()

    async def _until(self, done) -> None:
        while not done():
            if self._unsubmitted:
                self.submit()
            self._changed = trio.Event()
            await self._changed.wait()

    async def _enqueue(self, req: Request) -> Request:
        if self._full() and not self.closed:
            await self._until(lambda: not self._full())
        return self._accept(req)

    async def enqueue_read(self, *args: Any, **kw: Any) -> Request:
        return await self._enqueue(self._read(*args, **kw))

    def enqueue_read_nowait(self, *args: Any, **kw: Any) -> Request:
        return self._accept(self._read(*args, **kw))

    async def enqueue_memory_read(self, *args: Any, **kw: Any) -> Request:
        return await self._enqueue(self._memory_read(*args, **kw))

    async def enqueue_write(self, *args: Any, **kw: Any) -> Request:
        return await self._enqueue(self._write(*args, **kw))

    async def enqueue_status(self, array: StatusArray, index: int) -> Request:
        return await self._enqueue(self._status(array, index))

    async def enqueue_signal(self, fence: Fence, value: int) -> Request:
        return await self._enqueue(self._barrier(Op.SIGNAL, value, target=fence))

    async def enqueue_event(self) -> Request:
        return await self._enqueue(self._barrier(Op.EVENT))

    async def enqueue_fsync(self, file: File) -> Request:
        return await self._enqueue(self._barrier(Op.FSYNC, dst_id=file.id, file=file))

    async def wait_idle(self) -> None:
        self.submit()
        await self._until(lambda: not self._outstanding)

    async def wait(self, req: Request) -> Request:
        self.submit()
        await self._until(req.done)
        return req

    async def as_completed(self) -> AsyncIterator[Request]:
        self.submit()
        while True:
            while self._completed:
                yield self._completed.pop(0)
            if not self._outstanding:
                return
            await self._until(lambda: bool(self._completed) or not self._outstanding)

    async def cancel(self, mask: int, value: int) -> int:
        local = self._cancel_local(lambda r: (r.tag & mask) == value)
        return local + await self._client.cancel(queue=self.id, mask=mask, value=value)

    async def cancel_all(self) -> int:
        local = self._cancel_local(lambda r: True)
        return local + await self._client.cancel(queue=self.id, all=True)

    async def query(self) -> QueueQuery:
        return self._query(await self._client._call(lambda seq: QueryQueue(seq=seq, queue=self.id), QueueInfo,
                                                    what="QUERY_QUEUE"))

    async def retrieve_error_record(self) -> ErrorRecordInfo:
        reply = await self._client._call(lambda seq: RetrieveErrorRecord(seq=seq, queue=self.id), ErrorRecord,
                                         what="RETRIEVE_ERROR_RECORD")
        return ErrorRecordInfo(reply.failure_count, error_from_record(reply.first_failure) if reply.first_failure
                               else None)

    async def aclose(self) -> None:
        if self.closed:
            return
        self._close_local()
        self._changed.set()
        try:
            await self._client._call(lambda seq: CloseQueue(seq=seq, queue=self.id), Ok, what="CLOSE_QUEUE")
        except ConnectionLost:
            pass


def create_queue_message(*, capacity: int, priority: int, source_type: int, name: str, ordered: bool):
    return lambda seq: CreateQueue(seq=seq, capacity=capacity, priority=int(priority), source_type=int(source_type),
                                   name=name, ordered=ordered)


def create_queue(client: Any, *, capacity: int = 1024, priority: int = Priority.NORMAL,
                 source_type: int = SourceType.FILE, name: str = "", ordered: bool = False) -> Queue:
    reply: QueueCreated = client._call(create_queue_message(capacity=capacity, priority=priority,
                                                            source_type=source_type, name=name, ordered=ordered),
                                       QueueCreated, what="CREATE_QUEUE")
    return Queue(client, reply.queue, capacity=capacity, priority=priority, source_type=source_type, name=name)


async def create_async_queue(client: Any, *, capacity: int = 1024, priority: int = Priority.NORMAL,
                             source_type: int = SourceType.FILE, name: str = "", ordered: bool = False) -> AsyncQueue:
    reply: QueueCreated = await client._call(create_queue_message(capacity=capacity, priority=priority,
                                                                  source_type=source_type, name=name,
                                                                  ordered=ordered), QueueCreated, what="CREATE_QUEUE")
    return AsyncQueue(client, reply.queue, capacity=capacity, priority=priority, source_type=source_type, name=name)
