"""What a GPU handoff costs beside the GPU route into shared memory, on the same daemon and data.

Alternates, `--repeat` times, between two ways of getting one batch of GDeflate streams decoded:
  shm      queue reads with DSD_DECODE=gpu into a registered region (the bytes end in host memory)
  handoff  decode_to_gpu + fd over the handoff socket + import into this process's VkDevice +
           release (the bytes end in the caller's GPU memory)
and, for the fixed cost, a 4 KiB uncompressed decode_to_gpu against a PING round trip.
Prints medians and the handoff/shm ratio. Run: .venv/bin/python tools/handoff_bench.py
(lavapipe unless VK_ICD_FILENAMES says otherwise; the tests' conformance streams as data).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from gpu_support import use_lavapipe  # noqa: E402

use_lavapipe()

from dsd.bench._common import private_daemon  # noqa: E402
from dsd.client import Client, GpuRead  # noqa: E402
from dsd.client.vkimport import import_buffer  # noqa: E402
from dsd.daemon.gpu import VulkanDevice  # noqa: E402
from dsd.protocol import Compression  # noqa: E402

DATA = ROOT / "tests" / "data" / "gdeflate"
STREAMS = ["mixed-196625.9.gdef", "code-200000.9.gdef", "records-250000.12.gdef", "text-65537.9.gdef"]
SIZES = {"mixed-196625.9.gdef": 196625, "code-200000.9.gdef": 200000, "records-250000.12.gdef": 250000,
         "text-65537.9.gdef": 65537}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--copies", type=int, default=4, help="copies of the stream set in one batch")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        blob, spans = bytearray(), []
        for _ in range(args.copies):
            for name in STREAMS:
                data = (DATA / name).read_bytes()
                spans.append((len(blob), len(data), SIZES[name]))
                blob += data + bytes(-len(data) % 4)
        path = Path(tmp) / "assets.gdef"
        path.write_bytes(blob)
        small = Path(tmp) / "small.bin"
        small.write_bytes(bytes(4096))
        total = sum(s for _o, _c, s in spans)
        dev = VulkanDevice()
        times: dict[str, list[float]] = {"shm": [], "handoff": [], "ping": [], "handoff_4k": []}
        with private_daemon({"DSD_DECODE": "gpu"}) as d, Client(d.endpoint) as c:
            f, g = c.open(path), c.open(small)
            region = c.alloc(total)
            q = c.create_queue(capacity=1024)
            reads = [GpuRead(f, off, size, Compression.GDEFLATE, csize) for off, csize, size in spans]

            def via_shm() -> None:
                dst = 0
                for off, csize, size in spans:
                    q.enqueue_read(f, off, size, region, dst, compression=Compression.GDEFLATE, compressed_size=csize)
                    dst += size
                q.wait_idle(timeout=600)

            def via_handoff() -> None:
                with c.decode_to_gpu(reads, timeout=600) as buf:
                    import_buffer(buf, device=dev.device, physical_device=dev.physical).close()

            def small_handoff() -> None:
                with c.decode_to_gpu([GpuRead(g, 0, 4096)], timeout=60) as buf:
                    import_buffer(buf, device=dev.device, physical_device=dev.physical).close()

            parts: dict[str, list[float]] = {"decode_to_gpu": [], "import": [], "close import": [], "release": []}

            def small_handoff_parts() -> None:
                t0 = time.perf_counter()
                buf = c.decode_to_gpu([GpuRead(g, 0, 4096)], timeout=60)
                t1 = time.perf_counter()
                imported = import_buffer(buf, device=dev.device, physical_device=dev.physical)
                t2 = time.perf_counter()
                imported.close()
                t3 = time.perf_counter()
                buf.close()
                t4 = time.perf_counter()
                for k, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    parts[k].append(dt)

            via_shm(), via_handoff(), small_handoff()       # warm-up: device, pools, pipeline
            for _ in range(args.repeat):
                for name, fn in (("shm", via_shm), ("handoff", via_handoff), ("ping", c.ping),
                                 ("handoff_4k", small_handoff)):
                    t = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t)
                small_handoff_parts()
            for _ in range(64):  # the daemon's stage times cover its last 64 handoffs: make them 4 KiB ones
                small_handoff()
            st = c.statistics()
            decode = st["decode"]
            stages = st.get("gpu_exports", {}).get("stage_us", {})
        dev.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"device: {dev.info.name}; batch: {len(spans)} GDeflate streams, {total} decoded bytes; "
          f"{args.repeat} alternating repeats, medians")
    print(f"  shm      {med['shm'] * 1e3:8.2f} ms  ({total / med['shm'] / 1e6:7.1f} MB/s)")
    print(f"  handoff  {med['handoff'] * 1e3:8.2f} ms  ({total / med['handoff'] / 1e6:7.1f} MB/s)  "
          f"ratio handoff/shm {med['handoff'] / med['shm']:.2f}")
    print(f"  4 KiB handoff {med['handoff_4k'] * 1e6:8.0f} us   PING {med['ping'] * 1e6:6.0f} us   "
          f"ratio {med['handoff_4k'] / med['ping']:.1f}")
    print("  4 KiB handoff by step (client side, medians): " + ", ".join(
        f"{k} {statistics.median(v) * 1e6:.0f} us" for k, v in parts.items()))
    print("  the daemon's side of a 4 KiB handoff, by stage (medians of 64): " + ", ".join(
        f"{k} {v:.0f} us" for k, v in stages.items()))
    print(f"  GPU route requests: {decode['gpu_requests']} (shm reads really went to the GPU)")
    _vulkan_parts()


def _vulkan_parts(rounds: int = 30) -> None:
    """What the daemon's side of a 4 KiB handoff costs in Vulkan calls alone, in this process."""
    dev = VulkanDevice()
    vk = dev.vk
    usage = vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT
    steps: dict[str, list[float]] = {"host-visible 4 KiB create": [], "destroy": [], "exportable 4 KiB create": [],
                                     "export fd": [], "destroy exported": []}
    import os
    for _ in range(rounds):
        t0 = time.perf_counter()
        b = dev.create_buffer(4096, 0x1, host_visible=True)
        t1 = time.perf_counter()
        dev.destroy_buffer(b)
        t2 = time.perf_counter()
        e = dev.create_buffer(4096, usage, host_visible=False, device_local=True, exportable=True)
        t3 = time.perf_counter()
        fd = dev.export_fd(e)
        t4 = time.perf_counter()
        os.close(fd)
        dev.destroy_buffer(e)
        t5 = time.perf_counter()
        for k, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            steps[k].append(dt)
    dev.close()
    print("  Vulkan calls alone (medians): " + ", ".join(f"{k} {statistics.median(v) * 1e6:.0f} us"
                                                      for k, v in steps.items()))


if __name__ == "__main__":
    main()
