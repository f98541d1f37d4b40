"""GPU destinations for native Linux clients: ``decode_to_gpu`` and the buffer it returns.

The daemon reads (and decodes) the requested ranges into one device-local Vulkan buffer it
owns, replies GPU_BUFFER with a one-time ticket, and hands the buffer's memory over as an fd on
the handoff socket (SCM_RIGHTS; ZeroMQ cannot carry fds). ``GpuBuffer`` holds that fd until
``dsd.client.vkimport.import_buffer`` gives it to the caller's Vulkan device, or ``take_fd()``
gives it to the caller; ``close()`` releases the daemon's buffer and closes an fd still held.
docs/gpu.md ("Handing buffers to clients") has the flow and the lifetime rules.
"""

from __future__ import annotations

import array
import os
import socket
from dataclasses import dataclass
from typing import Any, Iterable

from dsd.protocol import (
    GPU_REQUEST_FIELDS,
    MAX_GPU_REQUESTS,
    TICKET_REPLY,
    Compression,
    GpuBuffer as GpuBufferReply,
    RemoteProtocolError,
    TicketReply,
    TicketRequest,
)
from dsd.protocol._records import U32_MAX, U64_MAX

from ._core import File
from ._errors import DsdError, GpuHandoffError, error_from_record

_FD_SPACE = socket.CMSG_SPACE(array.array("i").itemsize)


@dataclass(frozen=True)
class GpuRead:
    """One range for ``decode_to_gpu``: ``size`` decoded bytes from ``compressed_size`` bytes of
    ``file`` at ``offset`` (compressed_size defaults to size, for uncompressed reads)."""

    file: File
    offset: int
    size: int
    compression: int = Compression.NONE
    compressed_size: int | None = None

    def fields(self) -> list[int]:
        src = self.size if self.compressed_size is None else self.compressed_size
        if self.file.closed:
            raise ValueError(f"{self.file!r} is closed")
        if not 0 <= self.offset <= U64_MAX or not 0 <= src <= U32_MAX or not 0 <= self.size <= U32_MAX:
            raise ValueError(f"offset {self.offset} / sizes {src}, {self.size} out of range (sizes are u32)")
        return [self.file.id, self.offset, src, int(self.compression), self.size]


def request_list(reads: Iterable[GpuRead]) -> list[list[int]]:
    out = [r.fields() for r in reads]
    if not 1 <= len(out) <= MAX_GPU_REQUESTS:
        raise ValueError(f"decode_to_gpu takes 1..{MAX_GPU_REQUESTS} reads, got {len(out)}")
    assert all(len(f) == len(GPU_REQUEST_FIELDS) for f in out)
    return out


@dataclass(frozen=True)
class GpuResult:
    """Request i's bytes are [offset, offset + size) of the buffer, unless ``error`` is set."""

    offset: int
    size: int
    error: DsdError | None


class GpuBufferBase:
    """What both clients' GPU buffers share: the reply's fields, the fd and its ownership."""

    def __init__(self, reply: GpuBufferReply) -> None:
        self.buffer_id = reply.buffer_id
        self.size = reply.size
        self.allocation_size = reply.allocation_size
        self.memory_type_index = reply.memory_type_index
        self.handle_type = reply.handle_type
        self.device_uuid = reply.device_uuid
        self.driver_uuid = reply.driver_uuid
        errors = {e["index"]: e for e in reply.errors}
        self.results = [GpuResult(off, size, error_from_record(errors[i]) if i in errors else
                                  (error_from_record({"message": f"request {i} failed", "hresult": hr}) if hr else None))
                        for i, (off, size, hr) in enumerate(reply.results)]
        self.fd = -1
        self.closed = False

    def result(self, i: int) -> GpuResult:
        """Request i's place in the buffer; raises its error if it failed."""
        res = self.results[i]
        if res.error is not None:
            raise res.error
        return res

    def take_fd(self) -> int:
        """The fd, now the caller's to close (or to import: Vulkan then owns it)."""
        if self.fd < 0:
            raise GpuHandoffError("no fd held: the buffer holds no bytes, or its fd was imported or taken", code="NO_FD")
        fd, self.fd = self.fd, -1
        return fd

    def _fd_imported(self) -> None:
        self.fd = -1

    def _close_fd(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _close_locally(self, client: Any) -> int:
        """Mark closed and close the fd; returns the buffer id the daemon should still release
        (0 when there is nothing to release or the client is gone)."""
        if self.closed:
            return 0
        self.closed = True
        self._close_fd()
        return self.buffer_id if self.buffer_id and not client.closed else 0

    def __repr__(self) -> str:
        state = " closed" if self.closed else f" fd={self.fd}"
        return f"<{type(self).__name__} {self.buffer_id} {self.size} bytes{state}>"


class GpuBuffer(GpuBufferBase):
    """``Client.decode_to_gpu``'s result; a context manager (``close()`` releases it)."""

    def __init__(self, reply: GpuBufferReply, client: Any) -> None:
        super().__init__(reply)
        self._client = client

    def close(self) -> None:
        buffer_id = self._close_locally(self._client)
        if buffer_id:
            self._client.release_gpu_buffer(buffer_id)

    def __enter__(self) -> "GpuBuffer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncGpuBuffer(GpuBufferBase):
    """``AsyncClient.decode_to_gpu``'s result; ``async with`` or ``await aclose()``."""

    def __init__(self, reply: GpuBufferReply, client: Any) -> None:
        super().__init__(reply)
        self._client = client

    async def aclose(self) -> None:
        buffer_id = self._close_locally(self._client)
        if buffer_id:
            await self._client.release_gpu_buffer(buffer_id)

    async def __aenter__(self) -> "AsyncGpuBuffer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


# -- the handoff socket -------------------------------------------------------------------------


def fds_from(ancdata: list[tuple[int, int, bytes]], flags: int) -> list[int]:
    """Every fd that arrived (so none leaks, even those we refuse)."""
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
            fds.extend(arr)
    return fds


def settle(head: bytes, fds: list[int], flags: int, message: bytes, want_id: int) -> int:
    """The fd from a ticket reply, or GpuHandoffError; closes whatever else arrived."""
    try:
        try:
            err, buffer_id, _length = TicketReply.unpack_head(head)
        except RemoteProtocolError as exc:
            raise GpuHandoffError(f"the handoff socket sent garbage: {exc}", code="TICKET") from None
        text = message.decode(errors="replace")
        if err:
            raise GpuHandoffError(f"the daemon refused the ticket: {text} ({os.strerror(err)})", errno=err, code="TICKET")
        if flags & socket.MSG_CTRUNC or len(fds) != 1:
            raise GpuHandoffError(f"expected one fd with the ticket reply, got {len(fds)}", code="TICKET")
        if buffer_id != want_id:
            raise GpuHandoffError(f"the handoff socket answered for buffer {buffer_id}, not {want_id}", code="TICKET")
        fd = fds.pop()
        os.set_inheritable(fd, False)
        return fd
    finally:
        for extra in fds:
            os.close(extra)


def fetch_fd(path: str, ticket: bytes, buffer_id: int, timeout: float) -> int:
    """Blocking: trade the ticket for the buffer's fd on the handoff socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            sock.sendall(TicketRequest(ticket).pack())
            head, anc, flags, _addr = sock.recvmsg(TICKET_REPLY.size, _FD_SPACE, socket.MSG_CMSG_CLOEXEC)
            fds = fds_from(anc, flags)
            try:
                head += _recv_exactly(sock, TICKET_REPLY.size - len(head))
                length = TicketReply.unpack_head(head)[2] if len(head) == TICKET_REPLY.size else 0
                message = _recv_exactly(sock, length)
            except BaseException:
                for fd in fds:
                    os.close(fd)
                raise
        except RemoteProtocolError as exc:
            raise GpuHandoffError(f"the handoff socket sent garbage: {exc}", code="TICKET") from None
        except OSError as exc:
            raise GpuHandoffError(f"handoff socket {path}: {exc}", errno=exc.errno or 0, code="TICKET") from None
    return settle(head, fds, flags, message, buffer_id)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise GpuHandoffError("the handoff socket closed mid-reply", code="TICKET")
        out += chunk
    return out


async def fetch_fd_async(path: str, ticket: bytes, buffer_id: int, timeout: float) -> int:
    """trio: the same exchange as ``fetch_fd``."""
    import trio

    with trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        fds: list[int] = []
        try:
            with trio.fail_after(timeout):
                await sock.connect(path)
                await sock.send(TicketRequest(ticket).pack())
                head, anc, flags, _addr = await sock.recvmsg(TICKET_REPLY.size, _FD_SPACE, socket.MSG_CMSG_CLOEXEC)
                fds = fds_from(anc, flags)
                while len(head) < TICKET_REPLY.size:
                    chunk = await sock.recv(TICKET_REPLY.size - len(head))
                    if not chunk:
                        raise GpuHandoffError("the handoff socket closed mid-reply", code="TICKET")
                    head += chunk
                length = TicketReply.unpack_head(head)[2]
                message = b""
                while len(message) < length:
                    chunk = await sock.recv(length - len(message))
                    if not chunk:
                        raise GpuHandoffError("the handoff socket closed mid-reply", code="TICKET")
                    message += chunk
        except BaseException as exc:
            for fd in fds:
                os.close(fd)
            if isinstance(exc, trio.TooSlowError):
                raise GpuHandoffError(f"handoff socket {path}: no reply within {timeout:g}s", code="TICKET") from None
            if isinstance(exc, RemoteProtocolError):
                raise GpuHandoffError(f"the handoff socket sent garbage: {exc}", code="TICKET") from None
            if isinstance(exc, OSError):
                raise GpuHandoffError(f"handoff socket {path}: {exc}", errno=exc.errno or 0, code="TICKET") from None
            raise
    return settle(head, fds, flags, message, buffer_id)
