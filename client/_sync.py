"""The blocking client. One ``Client`` per thread: calls pump the socket on the caller's thread."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator

import zmq

from dsd.protocol import (
    Bye,
    Cancel,
    CloseFile,
    CompressionInfo,
    DecodeToGpu,
    FileOpened,
    GpuBuffer as GpuBufferReply,
    MemoryRegistered,
    Ok,
    OpenFile,
    Ping,
    Pong,
    QueryCompression,
    RegisterMemory,
    ReleaseGpuBuffer,
    StatsReply,
    StatsRequest,
    UnregisterMemory,
)

from ._core import ClientCore, File, ReadRequest, check_read_args, chunks, read_request, scratch_size
from ._endpoint import check_reachable, resolve_endpoint, resolve_token
from ._errors import ConnectionLost, DaemonUnavailable, DsdError
from ._gpu import GpuBuffer, GpuRead, fetch_fd, request_list
from ._queue import Queue, create_queue
from ._shm import Region



class Client:
    """Blocking dsd client: ``with Client() as c: data = c.read("/path")``."""

    def __init__(self, endpoint: str | None = None, *, name: str | None = None, token: str | None = None,
                 timeout: float = 10.0) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        check_reachable(self.endpoint)
        self.timeout = timeout
        self._core = ClientCore(name or os.path.basename(sys.argv[0] or "python"), os.getpid(),
                                resolve_token(self.endpoint, token))
        self._sock = zmq.Context.instance().socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(self.endpoint)
        self._regions: set[Region] = set()
        self._scratch: Region | None = None
        self._last_heard = time.monotonic()
        self.closed = False
        try:
            seq, frames = self._core.hello()
            self._send(frames)
            self.welcome = self._wait(seq, what=f"the daemon at {self.endpoint} to answer HELLO")
        except BaseException:
            self._sock.close(linger=0)
            self.closed = True
            raise

    # -- plumbing --------------------------------------------------------------------------

    def _send(self, frames: list[Any]) -> None:
        if self.closed:
            raise ConnectionLost("client is closed")
        self._sock.send_multipart(frames, copy=False)

    def _pump(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds for traffic, then digest everything that arrived."""
        if self._sock.poll(None if timeout is None else int(timeout * 1000), zmq.POLLIN):
            while True:
                try:
                    frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._last_heard = time.monotonic()
                self._core.receive(frames)

    def _pump_or_probe(self, timeout: float | None) -> None:
        """Pump; after ``self.timeout`` seconds of silence, make sure the daemon is still there
        (a PING), so waiting on a dead daemon ends in ConnectionLost instead of forever."""
        self._pump(timeout)
        if time.monotonic() - self._last_heard > self.timeout:
            try:
                self.ping()
            except DaemonUnavailable:
                error = ConnectionLost(f"the daemon at {self.endpoint} stopped answering")
                self._core.fail_everything(error)
                raise error from None

    def _wait(self, seq: int, *, what: str, timeout: float | None = None) -> Any:
        pending = self._core.pending[seq]
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not pending.done:
            left = deadline - time.monotonic()
            if left <= 0:
                self._core.pending.pop(seq, None)
                raise DaemonUnavailable(f"timed out after {timeout:g}s waiting for {what}")
            self._pump(left)
        if pending.error is not None:
            raise pending.error
        return pending.reply

    def _call(self, make, *expect: type, what: str, timeout: float | None = None) -> Any:
        seq, frames = self._core.call(make, *expect)
        self._send(frames)
        return self._wait(seq, what=what, timeout=timeout)

    # -- files and memory ------------------------------------------------------------------

    def open(self, path: str | os.PathLike, *, write: bool = False, create: bool = False) -> File:
        path = os.fspath(path)
        reply = self._call(lambda seq: OpenFile(seq=seq, path=os.path.abspath(path), write=write, create=create),
                           FileOpened, what=f"OPEN_FILE {path}")
        return File(reply.file_id, os.path.abspath(path), reply.size)

    def close_file(self, file: File) -> None:
        if file.closed:
            return
        file.closed = True
        self._call(lambda seq: CloseFile(seq=seq, file_id=file.id), Ok, what="CLOSE_FILE")

    def alloc(self, size: int) -> Region:
        """A new shared-memory region registered with the daemon, usable as a read destination."""
        region = Region(size)
        try:
            reply = self._call(lambda seq: RegisterMemory(seq=seq, name=region.name, size=size), MemoryRegistered,
                               what="REGISTER_MEMORY")
        except BaseException:
            region.release()
            raise
        region.id = reply.region_id
        region.unlink()  # the daemon has it mapped; nothing is left in /dev/shm if we crash
        self._regions.add(region)
        return region

    def free(self, region: Region) -> None:
        if region.closed:
            return
        self._regions.discard(region)
        try:
            if region.id is not None and not self.closed:
                self._call(lambda seq: UnregisterMemory(seq=seq, region_id=region.id), Ok, what="UNREGISTER_MEMORY")
        finally:
            region.release()

    # -- reads -------------------------------------------------------------------------------

    def batch(self) -> "Batch":
        return Batch(self)

    def read(self, path_or_file: str | os.PathLike | File, offset: int = 0, size: int | None = None) -> bytes:
        """Read ``size`` bytes (default: to the end of the file) at ``offset``."""
        file, owned = self._file(path_or_file)
        try:
            if size is None:
                size = max(file.size - offset, 0)
            if size < 0:
                raise ValueError(f"size {size} is negative")
            region = self._scratch_for(size)
            self._read_chunks(file, offset, size, region)
            return bytes(region.view[:size])
        finally:
            if owned:
                self.close_file(file)

    def read_into(self, file: File, offset: int, buffer: Any) -> int:
        """Fill ``buffer`` (a Region, or any writable buffer) from ``offset``; returns bytes read."""
        if isinstance(buffer, Region):
            self._read_chunks(file, offset, buffer.size, buffer)
            return buffer.size
        view = memoryview(buffer).cast("B")
        if view.readonly:
            raise TypeError("read_into needs a writable buffer")
        region = self._scratch_for(len(view))
        self._read_chunks(file, offset, len(view), region)
        view[:] = region.view[:len(view)]
        return len(view)

    def _read_chunks(self, file: File, offset: int, size: int, region: Region) -> None:
        batch = self.batch()
        for pos, length in chunks(size):
            batch.read(file, offset + pos, length, region, pos)
        batch.submit()
        for req in batch.wait_all():
            req.result()

    def _file(self, path_or_file: Any) -> tuple[File, bool]:
        if isinstance(path_or_file, File):
            return path_or_file, False
        return self.open(path_or_file), True

    def _scratch_for(self, size: int) -> Region:
        if self._scratch is None or self._scratch.size < size:
            if self._scratch is not None:
                self.free(self._scratch)
                self._scratch = None
            self._scratch = self.alloc(scratch_size(size))
        return self._scratch

    # -- GPU destinations --------------------------------------------------------------------

    def decode_to_gpu(self, reads: Iterable[GpuRead], *, timeout: float | None = None) -> GpuBuffer:
        """Read (and decode) ``reads`` into one GPU buffer the daemon owns and hand its memory
        over as an fd (``dsd.client.vkimport.import_buffer`` imports it). Per-request failures
        are in ``results``; ``close()`` the buffer when done. ipc connections only."""
        requests = request_list(reads)
        reply = self._call(lambda seq: DecodeToGpu(seq=seq, requests=requests), GpuBufferReply,
                           what="DECODE_TO_GPU", timeout=timeout)
        buf = GpuBuffer(reply, self)
        if reply.buffer_id:
            try:
                buf.fd = fetch_fd(reply.socket, reply.ticket, reply.buffer_id, self.timeout)
            except BaseException:
                buf.close()
                raise
        return buf

    def release_gpu_buffer(self, buffer_id: int) -> None:
        """Free the daemon's buffer (``GpuBuffer.close()`` calls this); an imported copy stays valid."""
        self._call(lambda seq: ReleaseGpuBuffer(seq=seq, buffer_id=buffer_id), Ok, what="RELEASE_GPU_BUFFER")

    # -- control -----------------------------------------------------------------------------

    def cancel(self, *, queue: int = 0, mask: int = 0, value: int = 0, ids: list[int] | None = None,
               all: bool = False) -> int:
        """Best-effort cancel of submitted requests; returns how many the daemon cancelled."""
        reply = self._call(lambda seq: Cancel(seq=seq, queue=queue, mask=mask, value=value, ids=list(ids or []),
                                              all=all), Ok, what="CANCEL")
        return reply.count

    def create_queue(self, *, capacity: int = 1024, priority: int = 0, source_type: int = 0, name: str = "",
                     ordered: bool = False) -> Queue:
        """A DirectStorage queue (capacity 128..8192, priority LOW..REALTIME, FILE or MEMORY source)."""
        return create_queue(self, capacity=capacity, priority=priority, source_type=source_type, name=name,
                            ordered=ordered)

    def compression_support(self, fmt: int) -> Any:
        """What the daemon can do for a compression format: DSTORAGE_COMPRESSION_SUPPORT flags + detail."""
        return self._call(lambda seq: QueryCompression(seq=seq, format=int(fmt)), CompressionInfo,
                          what="QUERY_COMPRESSION")

    def statistics(self) -> dict[str, Any]:
        return self._call(lambda seq: StatsRequest(seq=seq), StatsReply, what="STATS").stats

    def ping(self) -> float:
        start = time.perf_counter()
        self._call(lambda seq: Ping(seq=seq), Pong, what="PING")
        return time.perf_counter() - start

    def close(self) -> None:
        if self.closed:
            return
        try:
            for region in list(self._regions):
                region.release()
            self._regions.clear()
            try:
                self._call(lambda seq: Bye(seq=seq), Ok, what="BYE")
            except DsdError:
                pass  # the daemon may be gone already; closing must still succeed
        finally:
            self.closed = True
            self._core.fail_everything(ConnectionLost("client closed"))
            self._sock.close(linger=0)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.endpoint}{' closed' if self.closed else ''}>"


class Batch:
    """Requests enqueued locally, sent together by ``submit``, then awaited."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._queued: list[ReadRequest] = []
        self.requests: list[ReadRequest] = []
        self._completed: list[ReadRequest] = []

    def read(self, file: File, offset: int, size: int, region: Region, region_offset: int = 0, *, tag: int = 0,
             name: str | None = None) -> ReadRequest:
        check_read_args(file, offset, size, region, region_offset)
        req = read_request(self._client._core.new_request_id(), self, file, offset, size, region, region_offset,
                           tag=tag, name=name)
        req.on_done = self._completed.append
        self._queued.append(req)
        self.requests.append(req)
        return req

    def submit(self) -> None:
        if not self._queued:
            return
        queued, self._queued = self._queued, []
        self._client._send(self._client._core.batch_frames(queued, submit=True))

    def _pending(self) -> int:
        return len(self.requests) - len(self._completed)

    def wait_all(self, timeout: float | None = None) -> list[ReadRequest]:
        """Wait until every submitted request completed; returns them (check each ``result()``)."""
        self.submit()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._pending():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"{self._pending()} of {len(self.requests)} requests still running")
            self._client._pump_or_probe(min(left, 1.0) if left is not None else 1.0)
        return self.requests

    def as_completed(self, timeout: float | None = None) -> Iterator[ReadRequest]:
        """Yield requests in the order they complete."""
        self.submit()
        deadline = None if timeout is None else time.monotonic() + timeout
        yielded = 0
        while yielded < len(self.requests):
            if yielded < len(self._completed):
                yield self._completed[yielded]
                yielded += 1
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"{len(self.requests) - yielded} requests still running")
            self._client._pump_or_probe(min(left, 1.0) if left is not None else 1.0)
