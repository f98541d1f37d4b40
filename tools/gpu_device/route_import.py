# The daemon's GPU route into shared memory with its staging memfd imported into Vulkan
# (DSD_GPU_HOST_IMPORT=1) or copied by the CPU (0): one client reads 256 MiB of the bench's
# game-like corpus (1 MiB GDeflate streams, page cache warm) into a registered region through the
# route, alternating daemons; prints the median wall time and GB/s of decoded output.
import os, statistics, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__)))
from dsd.bench._common import private_daemon
from dsd.client import Client
from dsd.protocol import Compression
from tiles import game_streams

MIB = int(os.environ.get("ROUTE_MIB", "256"))
streams = game_streams(MIB)
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "assets.gdef")
    spans, pos = [], 0
    with open(path, "wb") as f:
        for s in streams:
            spans.append((pos, len(s)))
            f.write(s + bytes(-len(s) % 4))
            pos += len(s) + (-len(s) % 4)
    open(path, "rb").read()  # page cache warm
    times = {"1": [], "0": []}
    for rnd in range(int(os.environ.get("ROUTE_ROUNDS", "3"))):
        for imp in ("1", "0"):
            with private_daemon({"DSD_DECODE": "gpu", "DSD_GPU_HOST_IMPORT": imp}) as d, Client(d.endpoint) as c:
                f = c.open(path)
                region = c.alloc(MIB << 20)
                q = c.create_queue(capacity=1024)

                def once():
                    for k, (off, size) in enumerate(spans):
                        q.enqueue_read(f, off, 1 << 20, region, k << 20, compression=Compression.GDEFLATE,
                                       compressed_size=size)
                    q.wait_idle(timeout=300)

                once(); once()  # warm-up: device, pipeline, staging
                for _ in range(3):
                    t = time.perf_counter(); once(); times[imp].append(time.perf_counter() - t)
                staging = c.statistics()["decode"]["staging"]
            print(f"round {rnd} import={imp}: {staging}; last {times[imp][-1] * 1e3:.1f} ms", flush=True)
    for imp, ts in times.items():
        m = statistics.median(ts)
        print(f"DSD_GPU_HOST_IMPORT={imp}: median {m * 1e3:.1f} ms = {(MIB << 20) / m / 1e9:.2f} GB/s decoded "
              f"(runs {', '.join(f'{t * 1e3:.0f}' for t in ts)})")
