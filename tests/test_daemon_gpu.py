"""The daemon's GPU route (DSD_DECODE): GDeflate reads decoded by the Vulkan shader on Mesa
lavapipe (CI's GPU), straight into the clients' regions, with per-request errors and barriers."""

from __future__ import annotations

import csv
import hashlib
import time
from pathlib import Path

import pytest

from dsd.client import Client, DecompressionError, StatusArray
from dsd.protocol import HRESULT, Compression

DATA = Path(__file__).parent / "data" / "gdeflate"


def _lavapipe_or_skip():
    from dsd.daemon import gpu

    info = gpu.describe()
    if not info.get("device"):
        pytest.skip(f"no Vulkan device: {info.get('unavailable')}")


def _manifest() -> list[dict[str, str]]:
    with open(DATA / "MANIFEST.tsv") as f:
        return [row for row in csv.DictReader(f, delimiter="\t") if (DATA / row["file"]).exists()]


@pytest.fixture
def gpu_daemon(start_daemon):
    _lavapipe_or_skip()
    return start_daemon(env={"DSD_DECODE": "gpu"})


def _pack(tmp_path, names: list[str]) -> tuple[Path, list[tuple[int, int]]]:
    """Concatenate streams into one 'asset file' (each 4-byte aligned); returns (path, [(offset, size)])."""
    blob, spans = bytearray(), []
    for name in names:
        data = (DATA / name).read_bytes()
        spans.append((len(blob), len(data)))
        blob += data + bytes(-len(data) % 4)
    path = tmp_path / "assets.gdef"
    path.write_bytes(blob)
    return path, spans


@pytest.mark.parametrize("host_import", ["1", "0"])
def test_conformance_streams_decode_on_the_gpu_route(start_daemon, tmp_path, host_import):
    # Both ways the compressed bytes reach the GPU: the route's memfd imported as a Vulkan buffer
    # (VK_EXT_external_memory_host, which lavapipe has) and the CPU copy into staging.
    _lavapipe_or_skip()
    daemon = start_daemon(env={"DSD_DECODE": "gpu", "DSD_GPU_HOST_IMPORT": host_import})
    rows = _manifest()
    path, spans = _pack(tmp_path, [r["file"] for r in rows])
    with Client(daemon.ipc) as c:
        f = c.open(path)
        total = sum(int(r["uncompressed_bytes"]) for r in rows)
        region = c.alloc(total)
        q = c.create_queue(capacity=256)
        reqs, dst = [], 0
        for row, (off, size) in zip(rows, spans):
            n = int(row["uncompressed_bytes"])
            reqs.append(q.enqueue_read(f, off, n, region, dst, compression=Compression.GDEFLATE, compressed_size=size))
            dst += n
        q.wait_idle(timeout=300)
        for row, req in zip(rows, reqs):
            assert hashlib.sha256(req.data()).hexdigest() == row["sha256_of_uncompressed"], row["file"]
        decode = c.statistics()["decode"]
        info = c.compression_support(Compression.GDEFLATE)
    assert decode["mode"] == "gpu" and decode["gpu_requests"] == len(rows) and decode["gpu_failures"] == 0
    assert decode["staging"].startswith("imported" if host_import == "1" else "copied")
    assert info.flags & 0x2 and info.flags & 0x8 and "GPU shader" in info.detail   # GPU_FALLBACK, compute queue


def test_a_corrupt_stream_fails_alone_and_barriers_wait_for_gpu_work(gpu_daemon, tmp_path):
    good = "mixed-196625.9.gdef"
    path, spans = _pack(tmp_path, [good, "bad-reserved-blocktype.gdef", good])
    with Client(gpu_daemon.ipc) as c:
        f, region = c.open(path), c.alloc(3 * 196625)
        q = c.create_queue(capacity=128)
        status = StatusArray(1)
        reqs = [q.enqueue_read(f, off, 196625, region, i * 196625, compression=Compression.GDEFLATE,
                               compressed_size=size) for i, (off, size) in enumerate(spans)]
        q.enqueue_status(status, 0)
        order = [r.id for r in q.as_completed(timeout=300)]
        assert order[-1] != reqs[0].id and len(order) == 4          # the status entry comes last
        assert bytes(reqs[0].data()) == bytes(reqs[2].data())
        with pytest.raises(DecompressionError, match="GPU") as info:
            reqs[1].result()
        assert info.value.hresult == HRESULT.E_DSTORAGE_DECOMPRESSION_ERROR
        assert status.get_hresult(0) == HRESULT.E_DSTORAGE_DECOMPRESSION_ERROR
        assert c.statistics()["decode"]["gpu_failures"] == 1


def test_auto_keeps_cpu_drivers_on_the_cpu_codec(start_daemon, tmp_path):
    _lavapipe_or_skip()
    from dsd.daemon import gpu

    if gpu.describe()["device"].get("kind") != "cpu":  # a real GPU (VK_DRIVER_FILES on a GPU machine)
        pytest.skip("the Vulkan device is a GPU, not a CPU driver: auto decodes on it")
    d = start_daemon(env={"DSD_DECODE": "auto", "DSD_DECODE_GPU_MIN_BYTES": "0"})
    path, spans = _pack(tmp_path, ["text-65537.9.gdef"])
    with Client(d.ipc) as c:
        f, region = c.open(path), c.alloc(65537)
        q = c.create_queue(capacity=128)
        reasons = []
        for _ in range(40):
            r = q.enqueue_read(f, 0, 65537, region, compression=Compression.GDEFLATE, compressed_size=spans[0][1])
            q.wait_idle(timeout=60)
            assert r.result() == 65537
            reasons.append(c.statistics()["decode"]["last_choice"])
            if "CPU driver" in reasons[-1]:
                break
            time.sleep(0.2)
        decode = c.statistics()["decode"]
    assert "CPU driver" in reasons[-1], reasons
    assert decode["gpu_requests"] == 0 and decode["cpu_routed"] >= 1 and decode["kind"] == "cpu"
    with Client(d.ipc) as c:
        info = c.compression_support(Compression.GDEFLATE)
    assert info.flags == 0x4 and "CPU Vulkan" in info.detail       # honest: auto never uses lavapipe
