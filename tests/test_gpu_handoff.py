"""GPU buffers handed to native clients (DECODE_TO_GPU, the handoff socket, RELEASE_GPU_BUFFER),
end to end: a real daemon on Mesa lavapipe decodes into an exportable buffer, the client fetches
its fd over the handoff socket, and a second VkDevice here (the "client's own device") imports
the fd and copies the bytes back to a host-visible buffer to compare with the CPU codec."""

from __future__ import annotations

import csv
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import trio

from gpu_support import use_lavapipe

from dsd import codec
from dsd.client import (
    AsyncClient,
    Client,
    DecompressionError,
    EndOfFile,
    File,
    GpuHandoffError,
    GpuRead,
    InvalidRequest,
)
from dsd.client._gpu import fetch_fd
from dsd.protocol import Compression, DecodeToGpu, GpuBuffer

use_lavapipe()

DATA = Path(__file__).parent / "data" / "gdeflate"
MIXED = "mixed-196625.9.gdef"


def _manifest() -> list[dict[str, str]]:
    with open(DATA / "MANIFEST.tsv") as f:
        return [row for row in csv.DictReader(f, delimiter="\t") if (DATA / row["file"]).exists()]


class ClientDevice:
    """The test's own Vulkan device: imports handed-over fds and reads them back."""

    def __init__(self) -> None:
        from dsd.daemon.gpu import GpuUnavailable, VulkanDevice

        try:
            self.dev = VulkanDevice()
        except GpuUnavailable as exc:
            pytest.skip(f"no Vulkan device: {exc}")
        if not self.dev.external_fd:
            self.dev.close()
            pytest.skip(f"{self.dev.info.name} lacks VK_KHR_external_memory_fd")
        vk = self.vk = self.dev.vk
        info = vk.VkCommandPoolCreateInfo(sType=vk.VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                          queueFamilyIndex=self.dev.compute_family)
        self.pool = vk.vkCreateCommandPool(self.dev.device, info, None)
        self.fence = vk.vkCreateFence(self.dev.device,
                                      vk.VkFenceCreateInfo(sType=vk.VK_STRUCTURE_TYPE_FENCE_CREATE_INFO), None)

    def import_(self, buf):
        from dsd.client.vkimport import import_buffer

        return import_buffer(buf, device=self.dev.device, physical_device=self.dev.physical)

    def read_back(self, imported) -> bytes:
        """Acquire from VK_QUEUE_FAMILY_EXTERNAL, copy the whole buffer to host memory, wait."""
        vk, dev = self.vk, self.dev.device
        host = self.dev.create_buffer(imported.size, vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT, host_visible=True,
                                      readback=True)
        try:
            alloc = vk.VkCommandBufferAllocateInfo(sType=vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                                   commandPool=self.pool, level=vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                                   commandBufferCount=1)
            cmd = vk.vkAllocateCommandBuffers(dev, alloc)[0]
            begin = vk.VkCommandBufferBeginInfo(sType=vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                                flags=vk.VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT)
            vk.vkBeginCommandBuffer(cmd, begin)
            acquire = imported.acquire_barrier(self.dev.compute_family)
            vk.vkCmdPipelineBarrier(cmd, vk.VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, vk.VK_PIPELINE_STAGE_TRANSFER_BIT, 0,
                                    0, None, 1, [acquire], 0, None)
            region = vk.VkBufferCopy(srcOffset=0, dstOffset=0, size=imported.size)
            vk.vkCmdCopyBuffer(cmd, imported.buffer, host.handle, 1, [region])
            to_host = vk.VkMemoryBarrier(sType=vk.VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                                         srcAccessMask=vk.VK_ACCESS_TRANSFER_WRITE_BIT,
                                         dstAccessMask=vk.VK_ACCESS_HOST_READ_BIT)
            vk.vkCmdPipelineBarrier(cmd, vk.VK_PIPELINE_STAGE_TRANSFER_BIT, vk.VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                                    [to_host], 0, None, 0, None)
            vk.vkEndCommandBuffer(cmd)
            cmds = [cmd]
            submit = vk.VkSubmitInfo(sType=vk.VK_STRUCTURE_TYPE_SUBMIT_INFO, commandBufferCount=1,
                                     pCommandBuffers=cmds)
            vk.vkQueueSubmit(self.dev.compute_queue, 1, [submit], self.fence)
            vk.vkWaitForFences(dev, 1, [self.fence], vk.VK_TRUE, 60 * 10**9)
            vk.vkResetFences(dev, 1, [self.fence])
            vk.vkFreeCommandBuffers(dev, self.pool, 1, cmds)
            return bytes(host.mapping[:imported.size])
        finally:
            self.dev.destroy_buffer(host)

    def close(self) -> None:
        vk, dev = self.vk, self.dev.device
        vk.vkDestroyFence(dev, self.fence, None)
        vk.vkDestroyCommandPool(dev, self.pool, None)
        self.dev.close()


@pytest.fixture(scope="module")
def device():
    d = ClientDevice()
    yield d
    d.close()


@pytest.fixture
def gpu_daemon(start_daemon, device):
    return start_daemon(env={"DSD_DECODE": "gpu"})


def _pack(tmp_path, blobs: list[bytes], name: str = "assets.bin") -> tuple[Path, list[tuple[int, int]]]:
    """One 'asset file' of the blobs (each 4-byte aligned); returns (path, [(offset, size)])."""
    out, spans = bytearray(), []
    for data in blobs:
        spans.append((len(out), len(data)))
        out += data + bytes(-len(data) % 4)
    path = tmp_path / name
    path.write_bytes(out)
    return path, spans


def _fds_settle(daemon, want: int, timeout: float = 10.0) -> int:
    """The daemon's fd count once it is ``want`` (or the timeout ran out): it closes a handoff
    connection and its copy of the fd just after the client has its reply, a moment later."""
    deadline = time.monotonic() + timeout
    while (n := daemon.open_fds()) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


def _quiet_fds(daemon) -> int:
    """The daemon's fd count with no handoff connection in flight (those only ever add fds)."""
    samples = []
    for _ in range(10):
        samples.append(daemon.open_fds())
        time.sleep(0.05)
    return min(samples)


def _fetch(device, buf) -> bytes:
    with device.import_(buf) as imported:
        return device.read_back(imported)


def test_conformance_streams_land_in_the_clients_own_device(gpu_daemon, device, tmp_path):
    rows = _manifest()
    blobs = [(DATA / r["file"]).read_bytes() for r in rows]
    path, spans = _pack(tmp_path, blobs)
    with Client(gpu_daemon.ipc) as c:
        f = c.open(path)
        reads = [GpuRead(f, off, int(r["uncompressed_bytes"]), Compression.GDEFLATE, size)
                 for r, (off, size) in zip(rows, spans)]
        with c.decode_to_gpu(reads, timeout=300) as buf:
            assert buf.fd >= 0 and buf.handle_type == 1 and buf.allocation_size >= buf.size
            data = _fetch(device, buf)
            assert buf.fd == -1                       # Vulkan owns it after a successful import
        for i, blob in enumerate(blobs):
            res = buf.result(i)
            assert res.offset % 256 == 0
            assert data[res.offset:res.offset + res.size] == codec.decompress(Compression.GDEFLATE, blob), rows[i]["file"]
        stats = c.statistics()["gpu_exports"]
    assert stats["held"] == 0 and stats["tickets_redeemed"] == 1 and stats["made"] == 1


def test_mixed_formats_and_per_request_errors(gpu_daemon, device, tmp_path, make_file):
    plain = os.urandom(100_000)
    text = b"the quick brown fox " * 20_000
    gd = (DATA / MIXED).read_bytes()
    zs = codec.compress(Compression.ZSTD, text)
    bad_gd = (DATA / "bad-reserved-blocktype.gdef").read_bytes()
    bad_zs = bytearray(zs)
    bad_zs[len(bad_zs) // 2] ^= 0xFF
    path, spans = _pack(tmp_path, [plain, zs, gd, bad_gd, bytes(bad_zs)])
    with Client(gpu_daemon.ipc) as c:
        f = c.open(path)
        reads = [GpuRead(f, spans[0][0], len(plain)),
                 GpuRead(f, spans[1][0], len(text), Compression.ZSTD, spans[1][1]),
                 GpuRead(f, spans[2][0], 196625, Compression.GDEFLATE, spans[2][1]),
                 GpuRead(f, spans[3][0], 196625, Compression.GDEFLATE, spans[3][1]),
                 GpuRead(f, spans[4][0], len(text), Compression.ZSTD, spans[4][1]),
                 GpuRead(f, f.size - 10, 100),                                   # runs past the end
                 GpuRead(File(4242, "/nowhere", 0), 0, 10)]                      # never opened
        with c.decode_to_gpu(reads, timeout=300) as buf:
            data = _fetch(device, buf)
        expect = {0: plain, 1: text, 2: codec.decompress(Compression.GDEFLATE, gd)}
        for i, want in expect.items():
            res = buf.result(i)
            assert data[res.offset:res.offset + res.size] == want
        with pytest.raises(DecompressionError, match="GPU"):
            buf.result(3)
        with pytest.raises(DecompressionError, match="request 4"):
            buf.result(4)
        with pytest.raises(EndOfFile):
            buf.result(5)
        with pytest.raises(InvalidRequest, match="file id 4242 is not open"):
            buf.result(6)
        assert [r.size for r in buf.results[3:]] == [0, 0, 0, 0]


def test_host_staging_is_reused_and_grown_across_jobs(gpu_daemon, device, tmp_path):
    # Plain and Zstandard bytes pass through one pooled host buffer: jobs smaller and larger than
    # it, one after another, must each land whole (a stale or short staging buffer would show).
    small = os.urandom(4096)
    big = os.urandom(300_000)
    text = b"staging grows " * 40_000
    zs = codec.compress(Compression.ZSTD, text)
    path, spans = _pack(tmp_path, [small, big, zs])
    with Client(gpu_daemon.ipc) as c:
        f = c.open(path)
        jobs = [[GpuRead(f, spans[0][0], len(small))],
                [GpuRead(f, spans[1][0], len(big)), GpuRead(f, spans[2][0], len(text), Compression.ZSTD, spans[2][1])],
                [GpuRead(f, spans[0][0], len(small))]]
        for reads, want in zip(jobs, [[small], [big, text], [small]]):
            with c.decode_to_gpu(reads, timeout=300) as buf:
                data = _fetch(device, buf)
                for i, expect in enumerate(want):
                    res = buf.result(i)
                    assert data[res.offset:res.offset + res.size] == expect
        # STATS says where a handoff's time went, stage by stage
        stages = c.statistics()["gpu_exports"]["stage_us"]
        assert list(stages) == ["submit", "reads", "to_thread", "build", "reply"]
        assert all(v >= 0 for v in stages.values()) and stages["build"] > 0


def test_nothing_decoded_means_no_buffer(gpu_daemon, tmp_path):
    path, spans = _pack(tmp_path, [(DATA / "bad-magic.gdef").read_bytes()])
    with Client(gpu_daemon.ipc) as c:
        f = c.open(path)
        with c.decode_to_gpu([GpuRead(f, 0, 100, Compression.GDEFLATE, spans[0][1])], timeout=300) as buf:
            assert buf.buffer_id == 0 and buf.fd == -1 and buf.size == 0
            with pytest.raises(DecompressionError):
                buf.result(0)
            with pytest.raises(GpuHandoffError) as info:
                buf.take_fd()
            assert info.value.code == "NO_FD"


def test_fds_return_to_baseline_after_release(gpu_daemon, device, tmp_path):
    path, spans = _pack(tmp_path, [(DATA / MIXED).read_bytes()])
    with Client(gpu_daemon.ipc) as c:
        f = c.open(path)
        read = [GpuRead(f, 0, 196625, Compression.GDEFLATE, spans[0][1])]

        def round_trip(import_it: bool) -> None:
            with c.decode_to_gpu(read, timeout=300) as buf:
                if import_it:
                    _fetch(device, buf)
        round_trip(True)                               # warm-up: pools, pipeline, first allocations
        daemon_base, mine = _quiet_fds(gpu_daemon), len(os.listdir("/proc/self/fd"))
        held = c.decode_to_gpu(read, timeout=300)      # held, fd not imported: both sides hold one
        assert c.statistics()["gpu_exports"]["held"] == 1 and held.fd >= 0
        held.close()
        for i in range(4):
            round_trip(import_it=i % 2 == 0)
        assert c.statistics()["gpu_exports"]["held"] == 0
        assert _fds_settle(gpu_daemon, daemon_base) == daemon_base
        assert len(os.listdir("/proc/self/fd")) == mine


def test_a_ticket_is_good_once_and_only_for_the_daemons_user(gpu_daemon, tmp_path):
    path, spans = _pack(tmp_path, [(DATA / MIXED).read_bytes()])
    with Client(gpu_daemon.ipc) as c:
        f = c.open(path)
        requests = [[f.id, 0, spans[0][1], Compression.GDEFLATE, 196625]]
        reply = c._call(lambda seq: DecodeToGpu(seq=seq, requests=requests), GpuBuffer, what="DECODE_TO_GPU",
                        timeout=300)
        assert len(reply.ticket) == 32 and reply.socket.endswith("handoff.sock")
        assert os.stat(reply.socket).st_mode & 0o777 == 0o600
        fd = fetch_fd(reply.socket, reply.ticket, reply.buffer_id, 10)
        os.close(fd)
        with pytest.raises(GpuHandoffError, match="already used") as info:
            fetch_fd(reply.socket, reply.ticket, reply.buffer_id, 10)
        assert info.value.errno == errno.ENOENT and info.value.code == "TICKET"
        with pytest.raises(GpuHandoffError, match="unknown ticket"):
            fetch_fd(reply.socket, os.urandom(32), reply.buffer_id, 10)
        import socket as _socket
        with _socket.socket(_socket.AF_UNIX) as raw:       # garbage gets an answer, not a hang
            raw.settimeout(10)
            raw.connect(reply.socket)
            raw.sendall(b"X" * 40)
            assert b"DSDH" in raw.recv(4096)
        c.release_gpu_buffer(reply.buffer_id)
        with pytest.raises(GpuHandoffError) as info:
            c.release_gpu_buffer(reply.buffer_id)
        assert info.value.code == "UNKNOWN_BUFFER"
        stats = c.statistics()["gpu_exports"]
    assert stats["tickets_redeemed"] == 1 and stats["tickets_refused"] == 3 and stats["held"] == 0
    assert "peer uid" not in gpu_daemon.output()


def test_the_per_session_limit(start_daemon, device, tmp_path):
    d = start_daemon(env={"DSD_DECODE": "gpu", "DSD_GPU_EXPORT_BYTES": "300000"})
    path, spans = _pack(tmp_path, [(DATA / MIXED).read_bytes()])
    with Client(d.ipc) as c, Client(d.ipc) as other:
        f, g = c.open(path), other.open(path)
        first = c.decode_to_gpu([GpuRead(f, 0, 196625, Compression.GDEFLATE, spans[0][1])], timeout=300)
        with pytest.raises(GpuHandoffError, match="DSD_GPU_EXPORT_BYTES") as info:
            c.decode_to_gpu([GpuRead(f, 0, 196625, Compression.GDEFLATE, spans[0][1])], timeout=300)
        assert info.value.code == "EXPORT_LIMIT" and info.value.errno == errno.EDQUOT
        other.decode_to_gpu([GpuRead(g, 0, 196625, Compression.GDEFLATE, spans[0][1])], timeout=300).close()
        first.close()
        c.decode_to_gpu([GpuRead(f, 0, 196625, Compression.GDEFLATE, spans[0][1])], timeout=300).close()


def test_tcp_clients_and_cpu_mode_get_clear_errors(start_daemon, tmp_path):
    d = start_daemon(env={"DSD_DECODE": "cpu"})
    path, _ = _pack(tmp_path, [b"abcd" * 100])
    with Client(d.tcp, token=d.token) as c:
        f = c.open(path)
        with pytest.raises(GpuHandoffError, match="TCP") as info:
            c.decode_to_gpu([GpuRead(f, 0, 400)])
        assert info.value.code == "HANDOFF_UNSUPPORTED" and info.value.errno == errno.EOPNOTSUPP
    with Client(d.ipc) as c:
        f = c.open(path)
        with pytest.raises(GpuHandoffError, match="DSD_DECODE=cpu") as info:
            c.decode_to_gpu([GpuRead(f, 0, 400)])
        assert info.value.code == "GPU_UNAVAILABLE"
        with pytest.raises(ValueError, match="1..4096"):
            c.decode_to_gpu([])


def test_a_sigkilled_client_leaves_nothing_behind(gpu_daemon, tmp_path):
    path, spans = _pack(tmp_path, [(DATA / MIXED).read_bytes()])
    script = textwrap.dedent(f"""
        import sys, time
        from dsd.client import Client, GpuRead
        c = Client({gpu_daemon.ipc!r})
        f = c.open({str(path)!r})
        bufs = [c.decode_to_gpu([GpuRead(f, 0, 196625, 1, {spans[0][1]})], timeout=300) for _ in range(3)]
        assert all(b.fd >= 0 for b in bufs)
        print("held", flush=True)
        time.sleep(600)
    """)
    with Client(gpu_daemon.ipc) as c:
        f = c.open(path)
        c.decode_to_gpu([GpuRead(f, 0, 196625, Compression.GDEFLATE, spans[0][1])], timeout=300).close()  # warm-up
        base = _quiet_fds(gpu_daemon)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "held"
            assert c.statistics()["gpu_exports"]["held"] == 3
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        deadline = time.monotonic() + 20
        while c.statistics()["gpu_exports"]["held"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.statistics()["gpu_exports"]["held"] == 0
        assert _fds_settle(gpu_daemon, base) == base


def test_trio_client_in_auto_mode(start_daemon, device, tmp_path):
    """auto keeps reads into shared memory off CPU drivers, but a GPU destination is asked for
    explicitly: the daemon opens the device for it (lavapipe here)."""
    d = start_daemon(env={"DSD_DECODE": "auto"})
    gd = (DATA / "text-65537.9.gdef").read_bytes()
    path, spans = _pack(tmp_path, [gd])

    async def main() -> bytes:
        async with AsyncClient(d.ipc) as c:
            f = await c.open(path)
            async with await c.decode_to_gpu([GpuRead(f, 0, 65537, Compression.GDEFLATE, spans[0][1])],
                                             timeout=300) as buf:
                data = _fetch(device, buf)
                res = buf.result(0)
            assert (await c.statistics())["gpu_exports"]["held"] == 0
            return data[res.offset:res.offset + res.size]

    assert trio.run(main) == codec.decompress(Compression.GDEFLATE, gd)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a peer of another uid needs root")
def test_a_peer_of_another_uid_is_refused():
    """The handoff socket's SO_PEERCRED check, against real kernel credentials: a process of uid
    65534 makes a socket pair (its creds are the pair's) and hands both ends over."""
    import socket as _socket

    from dsd.daemon._gpu_export import Exports
    from dsd.protocol import TICKET_REPLY, TicketReply, TicketRequest

    mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, socket
        os.setgid(65534); os.setuid(65534)
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        socket.send_fds(socket.socket(fileno={theirs.fileno()}), [b"x"], [a.fileno(), b.fileno()])
    """)], pass_fds=[theirs.fileno()], timeout=60)
    assert child.returncode == 0
    _msg, (a, b), _flags, _addr = _socket.recv_fds(mine, 1, 2)
    mine.close()
    theirs.close()
    exports = Exports(route=None)
    with _socket.socket(fileno=b) as peer:
        peer.sendall(TicketRequest(bytes(32)).pack())

        async def serve() -> None:
            await exports._serve_one(trio.socket.from_stdlib_socket(_socket.socket(fileno=a)))

        trio.run(serve)
        peer.settimeout(10)
        head = peer.recv(TICKET_REPLY.size)
        err, buffer_id, length = TicketReply.unpack_head(head)
        message = peer.recv(length).decode()
    assert err == errno.EACCES and buffer_id == 0 and "peer uid 65534" in message
    assert exports.counters["tickets_refused"] == 1


def test_a_client_that_leaves_mid_decode_leaves_nothing_behind(gpu_daemon, tmp_path):
    """BYE while the daemon is still reading or decoding: the job finishes and frees its buffer."""
    rows = _manifest()
    path, spans = _pack(tmp_path, [(DATA / r["file"]).read_bytes() for r in rows])
    with Client(gpu_daemon.ipc) as c:
        c.decode_to_gpu([GpuRead(c.open(path), 0, 4)], timeout=300).close()        # warm-up
    base = _quiet_fds(gpu_daemon)
    watcher = Client(gpu_daemon.ipc)
    for reads_done in (False, True, True):
        c = Client(gpu_daemon.ipc)
        f = c.open(path)
        requests = [[f.id, off, size, Compression.GDEFLATE, int(r["uncompressed_bytes"])]
                    for r, (off, size) in zip(rows * 4, spans * 4)]
        _seq, frames = c._core.call(lambda seq: DecodeToGpu(seq=seq, requests=requests), GpuBuffer)
        c._send(frames)
        # right behind the request (the reads are still running), or once they are in (lavapipe is
        # then decoding for a good while; a fast GPU may have replied already: freed by BYE then)
        while reads_done and watcher.statistics()["gpu_exports"]["jobs"]:
            time.sleep(0.005)
        c.close()
    watcher.close()
    with Client(gpu_daemon.ipc) as c:
        deadline = time.monotonic() + 60
        while (stats := c.statistics()["gpu_exports"])["held"] + stats["jobs"] and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)                                # a job on the worker thread finishes by itself
        assert c.statistics()["gpu_exports"]["held"] == 0
    assert _fds_settle(gpu_daemon, base) == base
    assert "Traceback" not in gpu_daemon.output()


def test_a_refused_import_leaves_the_fd_with_the_buffer(gpu_daemon, device, tmp_path):
    path, _ = _pack(tmp_path, [b"0123456789abcdef" * 64])
    with Client(gpu_daemon.ipc) as c:
        f = c.open(path)
        mine = len(os.listdir("/proc/self/fd"))
        with c.decode_to_gpu([GpuRead(f, 0, 1024)]) as buf:
            real, buf.device_uuid = buf.device_uuid, bytes(16)        # as if decoded on another GPU
            with pytest.raises(GpuHandoffError, match="same device") as info:
                device.import_(buf)
            assert info.value.code == "DEVICE_MISMATCH" and buf.fd >= 0
            buf.device_uuid = real
            with device.import_(buf) as imported:
                assert device.read_back(imported) == b"0123456789abcdef" * 64 and buf.fd == -1
            with pytest.raises(GpuHandoffError) as info:
                device.import_(buf)                                   # imported once: no fd left
            assert info.value.code == "NO_FD"
        with c.decode_to_gpu([GpuRead(f, 0, 1024)]) as buf:
            fd = buf.take_fd()                                        # the caller's now
        os.fstat(fd)                                                  # open, and ours to close
        os.close(fd)
        assert len(os.listdir("/proc/self/fd")) == mine
