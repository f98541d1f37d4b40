"""The trio client: ``async with AsyncClient() as c: data = await c.read(path)``.

A reader task owns the socket's receive side and feeds ``ClientCore``; callers wait on trio
events that the core's wakers set. Sends are non-blocking and happen on the caller's task.
"""

from __future__ import annotations

import os
import sys
from typing import Any, AsyncIterator, Iterable

import trio
import zmq

from dsd._trio_zmq import TrioSocket
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
from ._gpu import AsyncGpuBuffer, GpuRead, fetch_fd_async, request_list
from ._queue import AsyncQueue, create_async_queue
from ._shm import Region


class AsyncClient:
    """trio dsd client; use as ``async with``. Same operations as ``Client``, awaitable."""

    def __init__(self, endpoint: str | None = None, *, name: str | None = None, token: str | None = None,
                 timeout: float = 10.0) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self.timeout = timeout
        self._token = token
        self._name = name or os.path.basename(sys.argv[0] or "python")
        self._core: ClientCore | None = None
        self._sock: TrioSocket | None = None
        self._nursery_cm: Any = None
        self._regions: set[Region] = set()
        self._scratch: Region | None = None
        self.closed = True
        self.welcome: Any = None

    async def __aenter__(self) -> "AsyncClient":
        check_reachable(self.endpoint)
        self._core = ClientCore(self._name, os.getpid(), resolve_token(self.endpoint, self._token))
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        self._sock = TrioSocket(sock)
        self._nursery_cm = trio.open_nursery()
        nursery = await self._nursery_cm.__aenter__()
        self._reader_scope = trio.CancelScope()
        nursery.start_soon(self._reader)
        self.closed = False
        try:
            seq, frames = self._core.hello()
            self._sock.send(frames)
            self.welcome = await self._wait(seq, what=f"the daemon at {self.endpoint} to answer HELLO")
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.closed:
            return
        for region in list(self._regions):
            region.release()
        self._regions.clear()
        try:
            await self._call(lambda seq: Bye(seq=seq), Ok, what="BYE")
        except DsdError:
            pass
        await self._shutdown()

    async def _shutdown(self) -> None:
        self.closed = True
        self._core.fail_everything(ConnectionLost("client closed"))
        self._reader_scope.cancel()  # the reader runs forever otherwise
        await self._nursery_cm.__aexit__(None, None, None)
        self._sock.sock.close(linger=0)

    async def _reader(self) -> None:
        sock = self._sock
        with self._reader_scope:
            try:
                while True:
                    await sock.wait_readable()
                    while (frames := sock.recv_nowait()) is not None:
                        self._core.receive(frames)
                    await trio.lowlevel.checkpoint()
            except DsdError as exc:  # the daemon sent garbage: everything waiting fails with why
                self._core.fail_everything(exc)

    async def _wait(self, seq: int, *, what: str, timeout: float | None = None) -> Any:
        pending = self._core.pending[seq]
        timeout = self.timeout if timeout is None else timeout
        if not pending.done:
            event = trio.Event()
            pending.waker = event.set
            with trio.move_on_after(timeout) as scope:
                await event.wait()
            if scope.cancelled_caught:
                self._core.pending.pop(seq, None)
                raise DaemonUnavailable(f"timed out after {timeout:g}s waiting for {what}")
        if pending.error is not None:
            raise pending.error
        return pending.reply

    async def _call(self, make, *expect: type, what: str, timeout: float | None = None) -> Any:
        if self.closed and not isinstance(make(0), Bye):
            raise ConnectionLost("client is closed")
        seq, frames = self._core.call(make, *expect)
        self._sock.send(frames)
        return await self._wait(seq, what=what, timeout=timeout)

    # -- files and memory ----------------------------------------------------------------------

    async def open(self, path: str | os.PathLike, *, write: bool = False, create: bool = False) -> File:
        path = os.path.abspath(os.fspath(path))
        reply = await self._call(lambda seq: OpenFile(seq=seq, path=path, write=write, create=create), FileOpened,
                                 what=f"OPEN_FILE {path}")
        return File(reply.file_id, path, reply.size)

    async def close_file(self, file: File) -> None:
        if not file.closed:
            file.closed = True
            await self._call(lambda seq: CloseFile(seq=seq, file_id=file.id), Ok, what="CLOSE_FILE")

    async def alloc(self, size: int) -> Region:
        region = Region(size)
        try:
            reply = await self._call(lambda seq: RegisterMemory(seq=seq, name=region.name, size=size),
                                     MemoryRegistered, what="REGISTER_MEMORY")
        except BaseException:
            region.release()
            raise
        region.id = reply.region_id
        region.unlink()
        self._regions.add(region)
        return region

    async def free(self, region: Region) -> None:
        if region.closed:
            return
        self._regions.discard(region)
        try:
            await self._call(lambda seq: UnregisterMemory(seq=seq, region_id=region.id), Ok, what="UNREGISTER_MEMORY")
        finally:
            region.release()

    # -- reads ---------------------------------------------------------------------------------

    def batch(self) -> "AsyncBatch":
        return AsyncBatch(self)

    async def read(self, path_or_file: str | os.PathLike | File, offset: int = 0, size: int | None = None) -> bytes:
        owned = not isinstance(path_or_file, File)
        file = await self.open(path_or_file) if owned else path_or_file
        try:
            if size is None:
                size = max(file.size - offset, 0)
            region = await self._scratch_for(size)
            await self._read_chunks(file, offset, size, region)
            return bytes(region.view[:size])
        finally:
            if owned:
                await self.close_file(file)

    async def read_into(self, file: File, offset: int, buffer: Any) -> int:
        if isinstance(buffer, Region):
            await self._read_chunks(file, offset, buffer.size, buffer)
            return buffer.size
        view = memoryview(buffer).cast("B")
        if view.readonly:
            raise TypeError("read_into needs a writable buffer")
        region = await self._scratch_for(len(view))
        await self._read_chunks(file, offset, len(view), region)
        view[:] = region.view[:len(view)]
        return len(view)

    async def _read_chunks(self, file: File, offset: int, size: int, region: Region) -> None:
        batch = self.batch()
        for pos, length in chunks(size):
            batch.read(file, offset + pos, length, region, pos)
        for req in await batch.wait_all():
            req.result()

    async def _scratch_for(self, size: int) -> Region:
        if self._scratch is None or self._scratch.size < size:
            if self._scratch is not None:
                await self.free(self._scratch)
                self._scratch = None
            self._scratch = await self.alloc(scratch_size(size))
        return self._scratch

    # -- GPU destinations ----------------------------------------------------------------------

    async def decode_to_gpu(self, reads: Iterable[GpuRead], *, timeout: float | None = None) -> AsyncGpuBuffer:
        """See ``Client.decode_to_gpu``; ``await buf.aclose()`` (or ``async with``) releases it."""
        requests = request_list(reads)
        reply = await self._call(lambda seq: DecodeToGpu(seq=seq, requests=requests), GpuBufferReply,
                                 what="DECODE_TO_GPU", timeout=timeout)
        buf = AsyncGpuBuffer(reply, self)
        if reply.buffer_id:
            try:
                buf.fd = await fetch_fd_async(reply.socket, reply.ticket, reply.buffer_id, self.timeout)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await buf.aclose()
                raise
        return buf

    async def release_gpu_buffer(self, buffer_id: int) -> None:
        await self._call(lambda seq: ReleaseGpuBuffer(seq=seq, buffer_id=buffer_id), Ok, what="RELEASE_GPU_BUFFER")

    # -- control -------------------------------------------------------------------------------

    async def cancel(self, *, queue: int = 0, mask: int = 0, value: int = 0, ids: list[int] | None = None,
                     all: bool = False) -> int:
        reply = await self._call(lambda seq: Cancel(seq=seq, queue=queue, mask=mask, value=value,
                                                    ids=list(ids or []), all=all), Ok, what="CANCEL")
        return reply.count

    async def create_queue(self, *, capacity: int = 1024, priority: int = 0, source_type: int = 0, name: str = "",
                           ordered: bool = False) -> AsyncQueue:
        """A DirectStorage queue (see ``Client.create_queue``); its waits are awaitable."""
        return await create_async_queue(self, capacity=capacity, priority=priority, source_type=source_type,
                                        name=name, ordered=ordered)

    async def compression_support(self, fmt: int) -> Any:
        return await self._call(lambda seq: QueryCompression(seq=seq, format=int(fmt)), CompressionInfo,
                                what="QUERY_COMPRESSION")

    def _send(self, frames: list[Any]) -> None:
        if self.closed:
            raise ConnectionLost("client is closed")
        self._sock.send(frames)

    async def statistics(self) -> dict[str, Any]:
        return (await self._call(lambda seq: StatsRequest(seq=seq), StatsReply, what="STATS")).stats

    async def ping(self) -> float:
        start = trio.current_time()
        await self._call(lambda seq: Ping(seq=seq), Pong, what="PING")
        return trio.current_time() - start


class AsyncBatch:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._queued: list[ReadRequest] = []
        self.requests: list[ReadRequest] = []
        self._send, self._recv = trio.open_memory_channel[ReadRequest](float("inf"))
        self._remaining = 0
        self._all_done = trio.Event()
        self._all_done.set()

    def read(self, file: File, offset: int, size: int, region: Region, region_offset: int = 0, *, tag: int = 0,
             name: str | None = None) -> ReadRequest:
        check_read_args(file, offset, size, region, region_offset)
        req = read_request(self._client._core.new_request_id(), self, file, offset, size, region, region_offset,
                           tag=tag, name=name)
        req.on_done = self._on_done
        self._queued.append(req)
        self.requests.append(req)
        return req

    def submit(self) -> None:
        if not self._queued:
            return
        queued, self._queued = self._queued, []
        self._remaining += len(queued)
        if self._all_done.is_set():
            self._all_done = trio.Event()
        self._client._sock.send(self._client._core.batch_frames(queued, submit=True))

    def _on_done(self, req: ReadRequest) -> None:
        self._send.send_nowait(req)
        self._remaining -= 1
        if self._remaining == 0:
            self._all_done.set()

    async def wait_all(self) -> list[ReadRequest]:
        self.submit()
        await self._all_done.wait()
        return self.requests

    async def as_completed(self) -> AsyncIterator[ReadRequest]:
        self.submit()
        for _ in range(len(self.requests)):
            yield await self._recv.receive()
