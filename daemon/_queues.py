"""DirectStorage queue semantics, at batch granularity.

A queue's entries form one timeline of *epochs* (runs of requests between barriers) and
*barriers* (STATUS, SIGNAL, EVENT, FSYNC). Each epoch is a separate key in the io engine, so
completions come back grouped per epoch and Python only counts them: a barrier fires once
every epoch before it has drained, which is exactly "after every earlier entry completed",
whatever order requests finish in. Later epochs keep running meanwhile (barriers do not hold
back later requests). Failures are tracked per epoch (from the failed records only), giving
STATUS entries the first failure since the previous STATUS, and the queue its error record.

The ``Scheduler`` feeds epochs' request chunks to the engine through a bounded window, taking
from REALTIME, HIGH, NORMAL and LOW lanes in an 8:4:2:1 weighted rotation: higher priorities
are served first under load, and LOW still gets a share (no starvation).
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from dsd.protocol import (
    COMPLETION_RECORD,
    REQUEST_RECORD_SIZE,
    Op,
    Priority,
    Reason,
    RequestRecord,
    SourceType,
    Status,
)
from dsd.protocol._hresult import HRESULT

MIN_CAPACITY, MAX_CAPACITY = 128, 8192
CHUNK_RECORDS = 256          # records handed to the engine at once
DEFAULT_WINDOW = 4096        # records in the engine at once, across all clients
_BARRIER_BYTES = re.compile(rb"[\x02-\x05]")
_OP_OFFSET, _SOURCE_OFFSET = 52, 54
_keys = itertools.count(1 << 32)   # engine keys of epochs (sessions' own keys stay below)


class QueueError(Exception):
    """A queue operation refused as a whole: (code, message, hresult)."""

    def __init__(self, code: str, message: str, hresult: int) -> None:
        super().__init__(message)
        self.code, self.message, self.hresult = code, message, hresult


def completion(request_id: int, status: Status, hresult: int = 0, errno: int = 0, reason: Reason = Reason.NONE,
               nbytes: int = 0) -> bytes:
    return COMPLETION_RECORD.pack(request_id, nbytes, hresult, errno, status, reason)


class Epoch:
    """Requests of one queue between two barriers; one io engine key."""

    __slots__ = ("key", "queue", "outstanding", "in_engine", "first_failure", "closed", "scheduled", "gpu_job")

    def __init__(self, queue: "Queue") -> None:
        self.key = next(_keys)
        self.queue = queue
        self.outstanding = 0          # requests accepted and not yet completed
        self.in_engine = 0            # of those, handed to the engine by the scheduler and not reaped
        self.first_failure: dict[str, Any] | None = None  # lowest request id among its failures
        self.closed = False           # a barrier follows: no more requests join it
        self.scheduled = True         # its requests go through the Scheduler (an FSYNC's does not)
        self.gpu_job: Any = None      # set for an epoch of GDeflate reads routed to the GPU decoder


@dataclass
class Barrier:
    record: RequestRecord


@dataclass
class Chunk:
    epoch: Epoch
    records: Any                      # buffer of count * 64 bytes
    names: Any
    count: int


class Queue:
    def __init__(self, qid: int, session: Any, *, capacity: int, priority: int, source_type: int, name: str,
                 ordered: bool = False, default: bool = False) -> None:
        self.id = qid
        self.session = session
        self.capacity = capacity
        self.priority = priority
        self.source_type = source_type
        self.name = name
        self.ordered = ordered
        self.default = default        # queue 0: no capacity limit, any source type
        self.held: list[tuple[Any, Any, int]] = []   # unsubmitted (records, names, count)
        self.held_count = 0
        self.in_flight = 0            # submitted entries not yet completed
        self.timeline: deque[Epoch | Barrier] = deque()
        self.epochs: dict[int, Epoch] = {}
        self.open_epoch: Epoch | None = None
        self.status_failure: dict[str, Any] | None = None   # first failure since the last STATUS fired
        self.error_count = 0          # failures since the last error-record retrieval
        self.error_first: dict[str, Any] | None = None
        self.closed = False
        self.chunk_records = CHUNK_RECORDS   # the daemon lowers it for small scheduler windows
        self._gpu: Any = None
        self._gpu_epochs: list[Epoch] = []
        # ordered queues: entry ids in enqueue order, and completions parked until their turn
        self.order: deque[int] = deque()
        self.parked: dict[int, tuple[bytes, dict[str, Any] | None]] = {}

    @classmethod
    def create(cls, qid: int, session: Any, *, capacity: int, priority: int, source_type: int, name: str,
               ordered: bool) -> "Queue":
        if not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
            raise QueueError("INVALID_QUEUE_CAPACITY", f"queue capacity {capacity} is outside "
                             f"{MIN_CAPACITY}..{MAX_CAPACITY}", HRESULT.E_DSTORAGE_INVALID_QUEUE_CAPACITY)
        if priority not in tuple(Priority):
            raise QueueError("INVALID_QUEUE_PRIORITY", f"queue priority {priority} is not LOW (-1), NORMAL (0), "
                             "HIGH (1) or REALTIME (2)", HRESULT.E_DSTORAGE_INVALID_QUEUE_PRIORITY)
        if source_type not in tuple(SourceType):
            raise QueueError("INVALID_SOURCE_TYPE", f"source type {source_type} is not FILE (0) or MEMORY (1)",
                             HRESULT.E_DSTORAGE_INVALID_SOURCE_TYPE)
        if source_type == SourceType.MEMORY and priority != Priority.REALTIME:
            raise QueueError("INVALID_MEMORY_QUEUE_PRIORITY", "a MEMORY-source queue must have REALTIME priority, "
                             "as in DirectStorage", HRESULT.E_DSTORAGE_INVALID_MEMORY_QUEUE_PRIORITY)
        return cls(qid, session, capacity=capacity, priority=priority, source_type=source_type, name=name[:256],
                   ordered=ordered)

    # -- accounting ------------------------------------------------------------------------

    def empty_slots(self) -> int:
        if self.default:
            return MAX_CAPACITY
        return max(self.capacity - 1 - self.held_count - self.in_flight, 0)

    def until_auto_submit(self) -> int:
        if self.default:
            return 0
        return max(self.capacity // 2 - self.held_count, 0)

    def check_room(self, count: int) -> None:
        if not self.default and self.held_count + self.in_flight + count > self.capacity:
            raise QueueError("QUEUE_FULL", f"queue {self.id} holds {self.held_count + self.in_flight} of "
                             f"{self.capacity} entries; {count} more do not fit (wait for completions)",
                             HRESULT.E_FAIL)

    def hold(self, records: Any, names: Any, count: int) -> bool:
        """Keep a batch until SUBMIT; True when the half-capacity auto-submit is due."""
        if self.ordered:  # request ids are the first u64 of each record
            self.order.extend(memoryview(records).cast("B").cast("Q")[::REQUEST_RECORD_SIZE // 8])
        self.held.append((records, names, count))
        self.held_count += count
        return not self.default and self.held_count >= self.capacity // 2

    def take_held(self) -> list[tuple[Any, Any, int]]:
        held, self.held, self.held_count = self.held, [], 0
        return held

    # -- submission -----------------------------------------------------------------------

    def _epoch(self) -> Epoch:
        if self.open_epoch is None:
            epoch = Epoch(self)
            self.open_epoch = epoch
            self.epochs[epoch.key] = epoch
            self.timeline.append(epoch)
        return self.open_epoch

    def split(self, records: Any, names: Any, count: int,
              reject: Callable[[RequestRecord, Reason, int, int], dict[str, Any]],
              gpu: Callable[["Queue", memoryview, int], tuple[memoryview, Any]] | None = None
              ) -> tuple[list[Chunk], list[Epoch]]:
        """Place a submitted batch on the timeline; returns request chunks for the scheduler and
        the epochs of GPU jobs (``gpu`` picks those). Records of the wrong source type are failed
        at once through ``reject``."""
        view = memoryview(records)
        ops = bytes(view[_OP_OFFSET::REQUEST_RECORD_SIZE])
        chunks: list[Chunk] = []
        self._gpu, self._gpu_epochs = gpu, []
        self.in_flight += count
        start = 0
        for match in _BARRIER_BYTES.finditer(ops):
            pos = match.start()
            self._requests(view[start * REQUEST_RECORD_SIZE:pos * REQUEST_RECORD_SIZE], names, pos - start, chunks,
                           reject)
            self._barrier(RequestRecord.unpack_from(view, pos * REQUEST_RECORD_SIZE))
            start = pos + 1
        self._requests(view[start * REQUEST_RECORD_SIZE:], names, count - start, chunks, reject)
        gpu_epochs, self._gpu, self._gpu_epochs = self._gpu_epochs, None, []
        return chunks, gpu_epochs

    def _requests(self, view: memoryview, names: Any, count: int, chunks: list[Chunk],
                  reject: Callable[..., None]) -> None:
        if count == 0:
            return
        view = self._filter_source_type(view, count, reject)
        count = len(view) // REQUEST_RECORD_SIZE
        if self._gpu is not None and count:
            view, job = self._gpu(self, view, count)
            if job is not None:
                self._gpu_epoch(job)
            count = len(view) // REQUEST_RECORD_SIZE
        if count == 0:
            return
        epoch = self._epoch()
        epoch.outstanding += count
        step = self.chunk_records
        for off in range(0, count, step):
            n = min(step, count - off)
            chunks.append(Chunk(epoch, view[off * REQUEST_RECORD_SIZE:(off + n) * REQUEST_RECORD_SIZE], names, n))

    def _filter_source_type(self, view: memoryview, count: int, reject: Callable[..., None]) -> memoryview:
        """READs must match the queue's source type (E_DSTORAGE_INVALID_SOURCE_TYPE otherwise)."""
        if self.default:
            return view
        wrong = bytes([1 - self.source_type])
        if wrong not in bytes(view[_SOURCE_OFFSET::REQUEST_RECORD_SIZE]):
            return view  # the common case: decided at C speed
        keep = bytearray()
        for i in range(count):
            raw = view[i * REQUEST_RECORD_SIZE:(i + 1) * REQUEST_RECORD_SIZE]
            rec = RequestRecord.unpack_from(raw)
            if rec.op == Op.READ and rec.source_type != self.source_type:
                self.in_flight -= 1
                failure = reject(rec, Reason.UNSUPPORTED, HRESULT.E_DSTORAGE_INVALID_SOURCE_TYPE, 0)
                self.note_failure(self._epoch(), failure)
            else:
                keep += raw
        return memoryview(bytes(keep))

    def _gpu_epoch(self, job: Any) -> None:
        """GPU-routed requests of this segment: their own epoch, placed before the next barrier."""
        epoch = Epoch(self)
        epoch.closed = True
        epoch.scheduled = False
        epoch.outstanding = len(job.records)
        epoch.gpu_job = job
        job.epoch = epoch
        self.epochs[epoch.key] = epoch
        self.timeline.append(epoch)
        self._gpu_epochs.append(epoch)

    def _barrier(self, record: RequestRecord) -> None:
        if self.open_epoch is not None:
            self.open_epoch.closed = True
            self.open_epoch = None
        self.timeline.append(Barrier(record))

    # -- completion -----------------------------------------------------------------------

    def on_completed(self, epoch: Epoch, count: int, failures: list[dict[str, Any]]) -> None:
        epoch.outstanding -= count
        self.in_flight -= count
        for failure in failures:
            self.note_failure(epoch, failure)

    def note_failure(self, epoch: Epoch, failure: dict[str, Any]) -> None:
        """Request ids grow in enqueue order, so the lowest failed id is the first failure."""
        self.error_count += 1
        if self.error_first is None:
            self.error_first = failure
        if epoch.first_failure is None or failure["id"] < epoch.first_failure["id"]:
            epoch.first_failure = failure

    def ready_barriers(self) -> list[RequestRecord]:
        """Barriers whose earlier entries have all completed, in queue order (removed from the timeline)."""
        fired: list[RequestRecord] = []
        while self.timeline:
            head = self.timeline[0]
            if isinstance(head, Epoch):
                if head.outstanding or not head.closed:
                    break
                self.timeline.popleft()
                del self.epochs[head.key]
                if head.first_failure is not None and self.status_failure is None:
                    self.status_failure = head.first_failure
                continue
            self.timeline.popleft()
            fired.append(head.record)
        return fired

    def fsync_epoch(self) -> Epoch:
        """A one-request epoch at the front of the timeline for an FSYNC that is now due."""
        epoch = Epoch(self)
        epoch.closed = True
        epoch.scheduled = False
        epoch.outstanding = 1
        self.epochs[epoch.key] = epoch
        self.timeline.appendleft(epoch)
        return epoch

    def status_result(self) -> int:
        failure, self.status_failure = self.status_failure, None
        return failure["hresult"] if failure else HRESULT.S_OK

    def take_error_record(self) -> tuple[int, dict[str, Any] | None]:
        count, first = self.error_count, self.error_first
        self.error_count, self.error_first = 0, None
        return count, first

    def keys(self) -> list[int]:
        return list(self.epochs)

    def deliver(self, records: bytes, errors: list[dict[str, Any]]) -> None:
        """Hand completions to the session; an ordered queue releases them in enqueue order
        (Python per completion: the price of the option, paid only by queues that ask for it)."""
        if not self.ordered:
            self.session.complete(records, errors)
            return
        by_id = {e["id"]: e for e in errors}
        for off in range(0, len(records), 32):
            rec = bytes(records[off:off + 32])
            rid = int.from_bytes(rec[:8], "little")
            self.parked[rid] = (rec, by_id.get(rid))
        out, out_errors = [], []
        while self.order and self.order[0] in self.parked:
            rec, err = self.parked.pop(self.order.popleft())
            out.append(rec)
            if err is not None:
                out_errors.append(err)
        if out:
            self.session.complete(b"".join(out), out_errors)


class Scheduler:
    """Priority lanes feeding the io engine through a bounded window of records."""

    ROTATION = (2, 1, 2, 0, 2, 1, 2, -1, 2, 1, 2, 0, 2, 1, 2)   # 8:4:2:1, interleaved

    def __init__(self, submit: Callable[[Chunk], None], window: int = DEFAULT_WINDOW) -> None:
        self._submit = submit
        self.window = window
        self.in_engine = 0
        self.lanes: dict[int, deque[Chunk]] = {p: deque() for p in (2, 1, 0, -1)}
        self.waiting = 0
        self._turn = 0
        self.served = {p: 0 for p in (2, 1, 0, -1)}

    def push(self, priority: int, chunks: list[Chunk]) -> None:
        lane = self.lanes[priority]
        for chunk in chunks:
            lane.append(chunk)
            self.waiting += chunk.count

    def done(self, epoch: Epoch, count: int) -> None:
        epoch.in_engine -= count
        self.in_engine -= count

    def forget(self, epoch: Epoch) -> None:
        """The epoch was dropped from the engine (client or queue gone): its records never come back."""
        self.in_engine -= epoch.in_engine
        epoch.in_engine = 0

    def pump(self) -> None:
        while self.waiting and self.in_engine < self.window:
            chunk, priority = self._next()
            self.waiting -= chunk.count
            if chunk.epoch.queue.closed:
                continue
            self.in_engine += chunk.count
            chunk.epoch.in_engine += chunk.count
            self.served[priority] += chunk.count
            self._submit(chunk)

    def _next(self) -> tuple[Chunk, int]:
        rotation = self.ROTATION
        for _ in range(len(rotation)):
            priority = rotation[self._turn % len(rotation)]
            self._turn += 1
            lane = self.lanes[priority]
            if lane:
                return lane.popleft(), priority
        raise AssertionError("waiting > 0 but every lane is empty")

    def withdraw(self, match: Callable[[Chunk], bool]) -> list[Chunk]:
        """Remove waiting chunks (of a closed queue, or to cancel) and return them."""
        taken: list[Chunk] = []
        for lane in self.lanes.values():
            keep = deque()
            for chunk in lane:
                (taken if match(chunk) else keep).append(chunk)
            lane.clear()
            lane.extend(keep)
        self.waiting -= sum(c.count for c in taken)
        return taken
