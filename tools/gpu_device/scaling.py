# Where the shader's time goes at the end of a batch: decode-only GB/s of the bench's game-like
# corpus (1 MiB streams) at several batch sizes, ours and nvCOMP's in the same process, and the
# same 512 MiB batch with its streams in other orders (tiles are handed out in stream order).
# If GB/s keeps rising with the batch size, the last, partly filled wave of tiles costs time.
import os, random
from dsd.daemon.gpu import GpuDecoder, VulkanDevice
from dsd.bench.gpu import _nvcomp_contender
from tiles import game_streams, time_decoder

SIZES = [int(x) for x in os.environ.get("SCALING_MIB", "64 128 256 512 1024 2048").split()]
base = game_streams(int(os.environ.get("SCALING_BASE_MIB", "512")))
dev = VulkanDevice()


def ours(batch, label):
    d = GpuDecoder(dev, shader=os.environ.get("SCALING_SHADER", "wave32"))
    try:
        time_decoder(d, batch, f"ours   {label}", width=31)
    finally:
        d.close()


def nv(batch, label):
    r = _nvcomp_contender([b for b, _ in batch], [s for _, s in batch], 7, "")
    print(f"  nvCOMP {label:24s} {sum(s for _, s in batch) / 2**20:6.0f} MiB  "
          f"median {r.get('gbps') or 0:6.2f} GB/s  failed {r.get('failed_chunks')} {r.get('why', '')}", flush=True)


for mib in SIZES:
    batch = [(base[i % len(base)], 1 << 20) for i in range(mib)]
    ours(batch, "in order")
    if os.environ.get("SCALING_NV", "1") == "1":
        nv(batch, "in order")
batch = [(b, 1 << 20) for b in base]
for label, key in (("smallest input first", len), ("largest input first", lambda b: -len(b))):
    ours(sorted(batch, key=lambda it: key(it[0])), label)
random.Random(1).shuffle(batch)
ours(batch, "shuffled")
