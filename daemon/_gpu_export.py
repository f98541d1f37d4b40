"""GPU buffers handed to native clients: DECODE_TO_GPU, the handoff socket, RELEASE_GPU_BUFFER.

A DECODE_TO_GPU request takes three steps. The io engine reads each range, as a plain read,
into a memfd of the job's own, registered in the session under a reserved region id (so
reads fail with the engine's words: EOF, EIO, unknown file). On a worker thread, GDeflate
ranges then go through the Vulkan shader into a device-local buffer (``decode_batch_device``),
Zstandard ranges are decoded on the CPU and uncompressed ones taken as read, both into a staging
buffer; one submit copies everything into one exportable buffer and releases it to
VK_QUEUE_FAMILY_EXTERNAL (when every range is GDeflate, the decoder's buffer is the exported one
and nothing is copied). Last, the daemon replies GPU_BUFFER with a one-time ticket.

The client trades the ticket for the memory's fd on a Unix stream socket beside the ipc
endpoint (ZeroMQ cannot carry fds): the peer's SO_PEERCRED uid must be the daemon's, the fd is
exported only then, sent with SCM_RIGHTS and closed here at once. The daemon keeps its buffer
until RELEASE_GPU_BUFFER or the end of the session (an imported copy lives on: Vulkan
reference-counts the memory); a session may hold at most DSD_GPU_EXPORT_BYTES of them.
"""

from __future__ import annotations

import array
import collections
import errno
import itertools
import logging
import mmap
import os
import secrets
import socket
import statistics
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import trio

from dsd.protocol import (
    REQUEST_RECORD,
    TICKET_REQUEST,
    Compression,
    GpuBuffer,
    Op,
    Reason,
    RemoteProtocolError,
    SourceType,
    Status,
    TicketReply,
    TicketRequest,
)
from dsd.protocol._hresult import HRESULT

log = logging.getLogger("dsd.daemon")

DEFAULT_EXPORT_BYTES = 1 << 30
ALIGN = 256                              # where each request's bytes start in the buffer
MAX_BUFFER_BYTES = 1 << 32               # the decoder's 32-bit offsets
REGION_BASE = 0xFFFF_0000                # job staging regions; below the route's 0xFFFF_FFF0
REGION_SPAN = 0xFF00
HANDSHAKE_SECONDS = 5.0                  # a handoff connection that says nothing is dropped
OPAQUE_FD = 0x1                          # VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT
_keys = itertools.count(1 << 48)         # io engine keys of export jobs (epochs count from 2^32)
_STATUS_OFFSET = 24


class ExportRefused(Exception):
    """The request as a whole is refused: (code, message, errno)."""

    def __init__(self, code: str, message: str, err: int) -> None:
        super().__init__(message)
        self.code, self.message, self.errno = code, message, err


@dataclass
class Piece:
    index: int
    file_id: int
    offset: int
    src_size: int
    compression: int
    size: int
    staging: int = 0                     # where its bytes land in the job's memfd


@dataclass
class Job:
    session: Any
    seq: int
    pieces: list[Piece]
    reserved: int                        # bytes counted against the session's limit meanwhile
    key: int = field(default_factory=lambda: next(_keys))
    region_id: int = 0
    fd: int = -1
    map: mmap.mmap | None = None
    remaining: int = 0
    failed: dict[int, dict[str, Any]] = field(default_factory=dict)   # index -> error map
    cancelled: bool = False
    times: list[float] = field(default_factory=list)  # perf_counter at each stage (STAGES)


@dataclass
class Export:
    session_key: int
    buffer_id: int
    buffer: Any                          # daemon.gpu.device.Buffer
    ticket: bytes | None


# Where a DECODE_TO_GPU request's time goes (STATS gpu_exports.stage_us, medians of the last
# STAGE_HISTORY jobs): submitting its reads (memfd, region, engine), the reads, the wait for the
# worker thread, the decode/copy into the buffer on it, and the reply.
STAGES = ("submit", "reads", "to_thread", "build", "reply")
STAGE_HISTORY = 64


class Exports:
    def __init__(self, route: Any, *, limit_bytes: int = DEFAULT_EXPORT_BYTES) -> None:
        self.route = route
        self.limit = limit_bytes
        self.jobs: dict[int, Job] = {}                       # io engine key -> job still reading
        self.held: dict[int, dict[int, Export]] = {}         # session key -> buffer id -> export
        self.tickets: dict[bytes, Export] = {}
        self.reserved: dict[int, int] = {}                   # session key -> bytes held or being made
        self.path: str | None = None
        self._listener: socket.socket | None = None
        self._regions = itertools.count()
        self._submitter: _Submitter | None = None
        self._stage: Any = None                        # pooled host staging (_staging)
        self._stage_device: Any = None
        self._uuids: tuple[Any, tuple[bytes, bytes]] | None = None
        self._support: tuple[Any, str] | None = None   # (device, why it cannot export, or "")
        self.counters = {"made": 0, "failed": 0, "tickets_redeemed": 0, "tickets_refused": 0}
        self._stage_times: collections.deque[tuple[float, ...]] = collections.deque(maxlen=STAGE_HISTORY)

    # -- the handoff socket -----------------------------------------------------------------

    def bind(self, path: str) -> None:
        """Bound before READY, like the zmq sockets; mode 0600 inside the 0700 runtime dir."""
        try:
            os.unlink(path)  # ours: only one daemon can own the runtime dir's ipc socket
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)
            sock.listen(64)
        except BaseException:
            sock.close()
            raise
        self._listener, self.path = sock, path

    async def serve(self) -> None:
        listener = trio.socket.from_stdlib_socket(self._listener)
        async with trio.open_nursery() as nursery:
            while True:
                conn, _addr = await listener.accept()
                nursery.start_soon(self._serve_one, conn)

    async def _serve_one(self, conn: Any) -> None:
        with conn:
            with trio.move_on_after(HANDSHAKE_SECONDS):
                try:
                    await self._redeem(conn)
                except OSError as exc:  # the client went away mid-exchange: its loss only
                    log.info("handoff connection failed: %s", exc)

    async def _redeem(self, conn: Any) -> None:
        async def refuse(err: int, message: str, buffer_id: int = 0) -> None:
            self.counters["tickets_refused"] += 1
            log.warning("handoff refused: %s", message)
            await conn.send(TicketReply(err, buffer_id, message).pack())

        pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != os.getuid():
            return await refuse(errno.EACCES, f"peer uid {uid} is not the daemon's ({os.getuid()})")
        raw = b""
        while len(raw) < TICKET_REQUEST.size:
            chunk = await conn.recv(TICKET_REQUEST.size - len(raw))
            if not chunk:
                return
            raw += chunk
        try:
            ticket = TicketRequest.unpack(raw).ticket
        except RemoteProtocolError as exc:
            return await refuse(errno.EPROTO, str(exc))
        export = self.tickets.pop(ticket, None)   # one use only, whatever happens next
        if export is None:
            return await refuse(errno.ENOENT, "unknown ticket, or one already used, or its buffer was released")
        export.ticket = None
        fd = self.route.decoder.device.export_fd(export.buffer)
        try:
            fds = array.array("i", [fd])
            await conn.sendmsg([TicketReply(0, export.buffer_id).pack()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        finally:
            os.close(fd)   # the client has its own copy now (or nothing, if the send failed)
        self.counters["tickets_redeemed"] += 1
        log.debug("handed buffer %d of session %d to pid %d", export.buffer_id, export.session_key, pid)

    # -- DECODE_TO_GPU ------------------------------------------------------------------------

    def start(self, session: Any, seq: int, requests: list[list[int]], engine: Any) -> Job:
        """Check the request, reserve its bytes, submit its reads; raises ExportRefused."""
        route = self.route
        if not session.trusted:
            raise ExportRefused("HANDOFF_UNSUPPORTED", "GPU buffers are handed over as file descriptors, which only "
                                "the ipc socket can pass; TCP (Wine) clients cannot receive them", errno.EOPNOTSUPP)
        if self._listener is None:
            raise ExportRefused("HANDOFF_UNSUPPORTED", "this daemon serves no ipc socket, so it has no handoff socket",
                                errno.EOPNOTSUPP)
        if route.mode == "cpu":
            raise ExportRefused("GPU_UNAVAILABLE", "DSD_DECODE=cpu: this daemon does not use the GPU", errno.ENODEV)
        self._check_device()
        if self.limit == 0:
            raise ExportRefused("EXPORT_LIMIT", "GPU buffer handoff is off here (DSD_GPU_EXPORT_BYTES=0)", errno.EDQUOT)
        pieces, out, staging = [], 0, 0
        for i, (file_id, offset, src_size, compression, size) in enumerate(requests):
            if compression not in (Compression.NONE, Compression.GDEFLATE, Compression.ZSTD):
                raise ExportRefused("BAD_REQUEST", f"request {i}: compression {compression} is not NONE (0), "
                                    "GDEFLATE (1) or ZSTD (2)", errno.EINVAL)
            if compression == Compression.NONE and src_size != size:
                raise ExportRefused("BAD_REQUEST", f"request {i}: an uncompressed read has compressed_size == size "
                                    f"(got {src_size} and {size})", errno.EINVAL)
            if src_size >= 1 << 32 or size >= 1 << 32:
                raise ExportRefused("BAD_REQUEST", f"request {i}: sizes are u32", errno.EINVAL)
            pieces.append(Piece(i, file_id, offset, src_size, compression, size, staging))
            staging += (src_size + 3) & ~3
            out = (out + size + ALIGN - 1) // ALIGN * ALIGN
        held = self.reserved.get(session.key, 0)
        if out + held > self.limit or staging > self.limit:
            raise ExportRefused("EXPORT_LIMIT", f"{out} bytes of GPU buffer (and {staging} compressed) on top of the "
                                f"{held} this session holds exceed its limit of {self.limit} (DSD_GPU_EXPORT_BYTES); "
                                "release buffers first", errno.EDQUOT)
        if out > MAX_BUFFER_BYTES:
            raise ExportRefused("BAD_REQUEST", f"{out} bytes in one buffer: split it (4 GiB at most)", errno.EINVAL)
        job = Job(session, seq, pieces, reserved=out, times=[time.perf_counter()])
        job.region_id = REGION_BASE + next(self._regions) % REGION_SPAN
        self.reserved[session.key] = held + out
        records = bytearray()
        for p in pieces:
            if p.file_id not in session.files:
                job.failed[p.index] = _error(p, Reason.BAD_FILE, HRESULT.E_DSTORAGE_FILE_NOT_OPEN, errno.EBADF,
                                             f"request {p.index}: file id {p.file_id} is not open in this session")
                continue
            records += REQUEST_RECORD.pack(p.index, 0, p.offset, p.src_size, p.file_id, p.staging, p.src_size,
                                           job.region_id, 0,
                                           Op.READ, Compression.NONE, SourceType.FILE, 0, 0, 0, 0, 0)
        job.remaining = len(records) // REQUEST_RECORD.size
        if job.remaining:
            try:
                job.fd = os.memfd_create("dsd-gpu-export", os.MFD_CLOEXEC)
                size = max(staging, mmap.PAGESIZE)
                os.ftruncate(job.fd, size)
                job.map = mmap.mmap(job.fd, size)
                session.registry.add_region(job.region_id, job.fd, size)
            except BaseException:  # e.g. ENOMEM: the request fails as a whole (INTERNAL), the quota is returned
                self._unreserve(session.key, out)
                _close_job(job)
                raise
            self.jobs[job.key] = job
            engine.submit(session.registry, job.key, bytes(records))
        job.times.append(time.perf_counter())
        return job

    def _check_device(self) -> None:
        route = self.route
        if route.unavailable is not None:
            raise ExportRefused("GPU_UNAVAILABLE", f"no GPU decoder: {route.unavailable}", errno.ENODEV)
        if route.decoder is None:
            return  # auto mode, not opened yet: finish() opens it and checks again
        device = route.decoder.device
        if self._support is None or self._support[0] is not device:
            self._support = (device, _export_support(device))
        if self._support[1]:
            raise ExportRefused("GPU_UNAVAILABLE", f"{device.info.name}: {self._support[1]}, so its memory cannot be "
                                "handed over", errno.ENODEV)

    def on_reads(self, job: Job, completions: bytes, errors: list[dict[str, Any]]) -> bool:
        """Reads of the job completed; True once all have (build it then)."""
        by_index = {e["id"]: e for e in errors}
        for off in range(0, len(completions), 32):
            index = int.from_bytes(completions[off:off + 8], "little")
            if completions[off + _STATUS_OFFSET] != Status.OK:
                error = by_index.get(index) or {"errno": 0, "hresult": HRESULT.E_FAIL, "reason": int(Reason.IO),
                                                "message": f"request {index}: read failed"}
                job.failed[index] = {k: v for k, v in error.items() if k != "request"} | {"index": index}
                job.failed[index].pop("id", None)
        job.remaining -= len(completions) // 32
        if job.remaining == 0:
            self.jobs.pop(job.key, None)
            job.times.append(time.perf_counter())
            return True
        return False

    async def finish(self, job: Job, alive: Callable[[Any], bool], reply: Callable[..., None]) -> None:
        """Decode and copy on a worker thread, then reply GPU_BUFFER (or ERROR) to a live session."""
        session = job.session
        if job.fd >= 0 and alive(session):
            session.registry.remove_region(job.region_id)
        built = None
        try:
            await self.route.ensure_open()
            self._check_device()
            if self.route.decoder is None:
                raise ExportRefused("GPU_UNAVAILABLE", "no GPU decoder is open", errno.ENODEV)
            built = await trio.to_thread.run_sync(self._build, job, limiter=self.route.limiter)
        except ExportRefused as exc:
            self._unreserve(session.key, job.reserved)
            self.counters["failed"] += 1
            if not job.cancelled:
                reply(session, job.seq, exc.code, exc.message, exc.errno)
            return
        except Exception as exc:  # a device loss or allocation failure fails this request, not the daemon
            log.exception("GPU buffer for %s failed", session.describe())
            self._unreserve(session.key, job.reserved)
            self.counters["failed"] += 1
            if not job.cancelled:
                reply(session, job.seq, "INTERNAL", f"building the GPU buffer failed: {exc}", errno.EIO)
            return
        finally:
            _close_job(job)
        buffer, results, errors = built
        self._unreserve(session.key, job.reserved)
        if job.cancelled or not alive(session):
            log.debug("GPU job of %s: the session left while it was decoding; buffer freed", session.describe())
            self._destroy(buffer)
            return
        self.counters["made"] += 1
        buffer_id, ticket = 0, b""
        if buffer is not None:
            buffer_id, ticket = session.new_id(), secrets.token_bytes(32)
            export = Export(session.key, buffer_id, buffer, ticket)
            self.held.setdefault(session.key, {})[buffer_id] = export
            self.tickets[ticket] = export
            self.reserved[session.key] = self.reserved.get(session.key, 0) + buffer.allocation_size
        device = self.route.decoder.device
        if self._uuids is None or self._uuids[0] is not device:
            self._uuids = (device, _uuids(device))
        dev_uuid, drv_uuid = self._uuids[1]
        size = max((off + n for off, n, hr in results if not hr and n), default=0)
        self._note_times(job)
        reply(session, GpuBuffer(
            seq=job.seq, buffer_id=buffer_id, ticket=ticket, socket=self.path or "", size=size,
            allocation_size=buffer.allocation_size if buffer is not None else 0,
            memory_type_index=buffer.memory_type if buffer is not None else 0, handle_type=OPAQUE_FD,
            device_uuid=dev_uuid, driver_uuid=drv_uuid, results=[list(r) for r in results],
            errors=sorted(errors, key=lambda e: e["index"])))

    def _build(self, job: Job) -> tuple[Any, list[tuple[int, int, int]], list[dict[str, Any]]]:
        """Worker thread, under the route's limiter (one user of the queue at a time)."""
        job.times.append(time.perf_counter())
        try:
            return self._build_on_thread(job)
        finally:
            job.times.append(time.perf_counter())

    def _build_on_thread(self, job: Job) -> tuple[Any, list[tuple[int, int, int]], list[dict[str, Any]]]:
        from dsd.codec import CodecError, zstd

        decoder = self.route.decoder
        device = decoder.device
        errors = dict(job.failed)
        live = [p for p in job.pieces if p.index not in errors]
        view = memoryview(job.map) if job.map is not None else memoryview(b"")
        gd = [p for p in live if p.compression == Compression.GDEFLATE]
        host = [p for p in live if p.compression != Compression.GDEFLATE]
        batch = None
        try:
            if gd:
                batch = decoder.decode_batch_device([(view[p.staging:p.staging + p.src_size], p.size) for p in gd],
                                                    exportable=not host)
                for k, p in enumerate(gd):
                    if batch.results[k] is not None:
                        # The error's traceback holds the decoder's frames, and they views of the
                        # job's mapping: without this the mapping stays exported until a GC pass.
                        batch.results[k].__traceback__ = None
                        errors[p.index] = _error(p, Reason.DECOMPRESS, HRESULT.E_DSTORAGE_DECOMPRESSION_ERROR, 0,
                                                 f"request {p.index}: the compressed data is corrupt: GPU: "
                                                 f"{batch.results[k]}")
            if not host:  # every range was GDeflate: the decoder's buffer is the one handed over
                results = [(batch.offsets[k], p.size, 0) if p.index not in errors else (0, 0, 0)
                           for k, p in enumerate(gd)]
                placed = {p.index: r for p, r in zip(gd, results)}
                buffer = batch.buffer if batch is not None and any(r[1] for r in results) else None
                if buffer is not None:
                    self._get_submitter(device).run([], buffer)
                    batch.buffer = None  # ours now; not released below
                return buffer, _results(job, placed, errors), list(errors.values())
            # Mixed: host bytes into staging, then one submit copies everything into one buffer.
            placed, pos = {}, 0
            for p in sorted(live, key=lambda p: p.index):
                if p.index not in errors and p.size:
                    placed[p.index] = (pos, p.size, 0)
                    pos = (pos + p.size + ALIGN - 1) // ALIGN * ALIGN
            host_bytes = sum(p.size for p in host)
            stage = self._staging(device, host_bytes) if host_bytes else None
            copies_from_stage, at = [], 0
            for p in host:
                src = view[p.staging:p.staging + p.src_size]
                dst = stage.mapping[at:at + p.size] if stage is not None else memoryview(bytearray(0))
                if p.compression == Compression.ZSTD:
                    try:
                        n = zstd.decompress_into(src, dst)
                    except CodecError as exc:
                        n, why = -1, str(exc)
                    if n != p.size:
                        placed.pop(p.index, None)
                        errors[p.index] = _error(p, Reason.DECOMPRESS, HRESULT.E_DSTORAGE_DECOMPRESSION_ERROR, 0,
                                                 f"request {p.index}: the compressed data is corrupt: " + (
                                                     why if n < 0 else f"decodes to {n} bytes, not {p.size}"))
                        continue
                else:
                    dst[:] = src
                if p.index in placed:
                    copies_from_stage.append((at, placed[p.index][0], p.size))
                at += p.size
            copies = [(stage.handle if stage is not None else None, s, d, n) for s, d, n in copies_from_stage]
            if batch is not None:
                for k, p in enumerate(gd):
                    if p.index not in errors and p.index in placed and p.size:
                        copies.append((batch.buffer.handle, batch.offsets[k], placed[p.index][0], p.size))
            for p in list(placed):
                if p in errors:
                    del placed[p]
            total = max((off + n for off, n, _ in placed.values()), default=0)
            buffer = None
            if total:
                vk = device.vk
                usage = (vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT
                         | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT)
                buffer = device.create_buffer(total, usage, host_visible=False, device_local=True, exportable=True)
                try:
                    self._get_submitter(device).run(copies, buffer)
                except BaseException:
                    device.destroy_buffer(buffer)
                    raise
            return buffer, _results(job, placed, errors), list(errors.values())
        finally:
            if batch is not None:
                batch.release()

    def _staging(self, device: Any, nbytes: int) -> Any:
        """The host-visible buffer that plain and Zstandard bytes go through, kept across jobs
        (grown to a power of two): on the H200 creating and destroying one per job cost 0.9 ms
        of a 4 KiB handoff's 4.2 ms. Jobs run one at a time (the route's limiter) and each
        waits for its copies, so one buffer serves them all."""
        stage = self._stage
        if stage is not None and stage.size >= nbytes and self._stage_device is device:
            return stage
        if stage is not None:
            self._stage_device.destroy_buffer(stage)
            self._stage = None
        size = 1 << max(16, (nbytes - 1).bit_length())
        self._stage = device.create_buffer(size, 0x1, host_visible=True)  # VK_BUFFER_USAGE_TRANSFER_SRC_BIT
        self._stage_device = device
        return self._stage

    def _get_submitter(self, device: Any) -> "_Submitter":
        if self._submitter is None or self._submitter.device is not device:
            self._submitter = _Submitter(device)
        return self._submitter

    # -- release and teardown ------------------------------------------------------------------

    def release(self, session: Any, buffer_id: int) -> Callable[[], None] | None:
        """Forgets the buffer; returns the step that frees its memory (None: not held), for the
        caller to run once it has answered the client (freeing took 0.3 ms on the H200)."""
        export = self.held.get(session.key, {}).pop(buffer_id, None)
        if export is None:
            return None
        self._unbook(export)
        return lambda: self._destroy(export.buffer)

    def drop_session(self, session: Any, engine: Any) -> None:
        """The client left (BYE or vanished): its buffers, tickets and reading jobs go; a job on
        the worker thread finishes there and frees what it built (``finish`` sees the session gone)."""
        for key, job in list(self.jobs.items()):
            if job.session is session:
                del self.jobs[key]
                job.cancelled = True
                log.debug("GPU job of %s: the session left while it was reading; job dropped", session.describe())
                if engine is not None:
                    engine.drop_client(key)
                _close_job(job)   # the registry mapping goes with the session's registry
        for export in self.held.pop(session.key, {}).values():
            self._forget(export)
        self.reserved.pop(session.key, None)

    def _forget(self, export: Export) -> None:
        self._unbook(export)
        self._destroy(export.buffer)

    def _unbook(self, export: Export) -> None:
        if export.ticket is not None:
            self.tickets.pop(export.ticket, None)
        self._unreserve(export.session_key, export.buffer.allocation_size)

    def _unreserve(self, session_key: int, nbytes: int) -> None:
        if session_key in self.reserved:
            self.reserved[session_key] = max(0, self.reserved[session_key] - nbytes)

    def _destroy(self, buffer: Any) -> None:
        if buffer is not None and self.route.decoder is not None:
            self.route.decoder.device.destroy_buffer(buffer)

    def close(self) -> None:
        for exports in self.held.values():
            for export in exports.values():
                self._destroy(export.buffer)
        self.held.clear()
        self.tickets.clear()
        for job in self.jobs.values():
            _close_job(job)
        self.jobs.clear()
        if self._submitter is not None:
            self._submitter.close()
            self._submitter = None
        if self._stage is not None:
            self._stage_device.destroy_buffer(self._stage)
            self._stage = self._stage_device = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            try:
                os.unlink(self.path)
            except (FileNotFoundError, TypeError):
                pass

    def _note_times(self, job: Job) -> None:
        """Stage durations of a job about to be answered (the reply stage ends now); jobs whose
        reads all failed skip the reads stages and are not counted."""
        if len(job.times) == len(STAGES):
            t = job.times + [time.perf_counter()]
            self._stage_times.append(tuple(b - a for a, b in zip(t, t[1:])))

    def stats(self) -> dict[str, Any]:
        held = [e for exports in self.held.values() for e in exports.values()]
        stage_us = {name: round(statistics.median(row[i] for row in self._stage_times) * 1e6, 1)
                    for i, name in enumerate(STAGES)} if self._stage_times else {}
        return {"socket": self.path, "limit_bytes": self.limit, "held": len(held),
                "held_bytes": sum(e.buffer.allocation_size for e in held), "jobs": len(self.jobs),
                "stage_us": stage_us, **self.counters}


def _results(job: Job, placed: dict[int, tuple[int, int, int]],
             errors: dict[int, dict[str, Any]]) -> list[tuple[int, int, int]]:
    out = []
    for p in job.pieces:
        if p.index in errors:
            out.append((0, 0, errors[p.index]["hresult"]))
        else:
            out.append(placed.get(p.index, (0, 0, 0)))
    return out


def _error(p: Piece, reason: Reason, hresult: int, err: int, message: str) -> dict[str, Any]:
    return {"index": p.index, "errno": err, "hresult": int(hresult), "reason": int(reason), "message": message}


def _close_job(job: Job) -> None:
    if job.map is not None:
        try:
            job.map.close()
        except BufferError:  # a view is still alive somewhere: the pages go when it does
            log.debug("export job %d: mapping still viewed; unmapped by the garbage collector", job.key)
        job.map = None
    if job.fd >= 0:
        os.close(job.fd)
        job.fd = -1


def _export_support(device: Any) -> str:
    """Why ``device`` cannot export our buffers as opaque fds ("" when it can). A driver that
    wants dedicated allocations for them is refused too: the buffers are not made that way."""
    if not device.external_fd:
        return "no VK_KHR_external_memory_fd"
    vk = device.vk
    usage = vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT
    info = vk.VkPhysicalDeviceExternalBufferInfo(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_BUFFER_INFO,
                                                 usage=usage, handleType=OPAQUE_FD)
    props = vk.VkExternalBufferProperties(sType=vk.VK_STRUCTURE_TYPE_EXTERNAL_BUFFER_PROPERTIES)
    vk.vkGetPhysicalDeviceExternalBufferProperties(device.physical, info, props)
    features = props.externalMemoryProperties.externalMemoryFeatures
    if not features & vk.VK_EXTERNAL_MEMORY_FEATURE_EXPORTABLE_BIT:
        return "its driver cannot export storage buffers as opaque fds"
    if features & vk.VK_EXTERNAL_MEMORY_FEATURE_DEDICATED_ONLY_BIT:
        return "its driver exports buffers only from dedicated allocations (not supported yet)"
    return ""


def _uuids(device: Any) -> tuple[bytes, bytes]:
    """deviceUUID and driverUUID: a client imports the fd only on the same device and driver."""
    vk = device.vk
    ids = vk.VkPhysicalDeviceIDProperties(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES)
    props = vk.VkPhysicalDeviceProperties2(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, pNext=ids)
    vk.vkGetPhysicalDeviceProperties2(device.physical, props)
    return bytes(vk.ffi.buffer(ids.deviceUUID, 16)), bytes(vk.ffi.buffer(ids.driverUUID, 16))


class _Submitter:
    """One command buffer and fence on the decoder's compute queue: copies into the exported
    buffer, then its release to VK_QUEUE_FAMILY_EXTERNAL (the importer's acquire matches it).
    Used only under the route's limiter, which serialises every use of that queue."""

    def __init__(self, device: Any) -> None:
        vk = self.vk = device.vk
        self.device = device
        info = vk.VkCommandPoolCreateInfo(sType=vk.VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                          flags=vk.VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                          queueFamilyIndex=device.compute_family)
        self.pool = vk.vkCreateCommandPool(device.device, info, None)
        alloc = vk.VkCommandBufferAllocateInfo(sType=vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                               commandPool=self.pool, level=vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                               commandBufferCount=1)
        self.cmd = vk.vkAllocateCommandBuffers(device.device, alloc)[0]
        self.fence = vk.vkCreateFence(device.device, vk.VkFenceCreateInfo(sType=vk.VK_STRUCTURE_TYPE_FENCE_CREATE_INFO),
                                      None)

    def run(self, copies: list[tuple[Any, int, int, int]], dst: Any) -> None:
        """copies: (source VkBuffer, source offset, destination offset, size) into ``dst``."""
        vk, dev, cmd = self.vk, self.device.device, self.cmd
        vk.vkResetCommandBuffer(cmd, 0)
        begin = vk.VkCommandBufferBeginInfo(sType=vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                            flags=vk.VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT)
        vk.vkBeginCommandBuffer(cmd, begin)
        # The decoder's writes (shader or copy) and the host's staging writes happen-before the copies.
        before = vk.VkMemoryBarrier(sType=vk.VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                                    srcAccessMask=vk.VK_ACCESS_SHADER_WRITE_BIT | vk.VK_ACCESS_TRANSFER_WRITE_BIT
                                    | vk.VK_ACCESS_HOST_WRITE_BIT,
                                    dstAccessMask=vk.VK_ACCESS_TRANSFER_READ_BIT | vk.VK_ACCESS_TRANSFER_WRITE_BIT)
        vk.vkCmdPipelineBarrier(cmd, vk.VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | vk.VK_PIPELINE_STAGE_HOST_BIT,
                                vk.VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, [before], 0, None, 0, None)
        regions = []
        for src, src_off, dst_off, size in copies:
            region = vk.VkBufferCopy(srcOffset=src_off, dstOffset=dst_off, size=size)
            regions.append(region)
            vk.vkCmdCopyBuffer(cmd, src, dst.handle, 1, [region])
        release = vk.VkBufferMemoryBarrier(
            sType=vk.VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER,
            srcAccessMask=vk.VK_ACCESS_TRANSFER_WRITE_BIT | vk.VK_ACCESS_SHADER_WRITE_BIT, dstAccessMask=0,
            srcQueueFamilyIndex=self.device.compute_family, dstQueueFamilyIndex=vk.VK_QUEUE_FAMILY_EXTERNAL,
            buffer=dst.handle, offset=0, size=0xFFFFFFFFFFFFFFFF)
        vk.vkCmdPipelineBarrier(cmd, vk.VK_PIPELINE_STAGE_TRANSFER_BIT | vk.VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                                vk.VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, 0, 0, None, 1, [release], 0, None)
        vk.vkEndCommandBuffer(cmd)
        cmds = [cmd]
        submit = vk.VkSubmitInfo(sType=vk.VK_STRUCTURE_TYPE_SUBMIT_INFO, commandBufferCount=1, pCommandBuffers=cmds)
        vk.vkQueueSubmit(self.device.compute_queue, 1, [submit], self.fence)
        try:
            vk.vkWaitForFences(dev, 1, [self.fence], vk.VK_TRUE, 120 * 10**9)
        finally:
            vk.vkResetFences(dev, 1, [self.fence])
        del regions, before, release, begin

    def close(self) -> None:
        vk, dev = self.vk, self.device.device
        if dev is None:
            return
        vk.vkDestroyFence(dev, self.fence, None)
        vk.vkDestroyCommandPool(dev, self.pool, None)
