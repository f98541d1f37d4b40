# The end of a batch: the order the work counter hands tiles out in. Decode-only GB/s of the
# bench's game-like corpus (1 MiB streams) with tiles in batch order, by compressed size
# (DSD_GPU_TILE_ORDER=size / size_asc) and in an oracle order (each tile's measured time on the
# device clock, longest first), plus the timeline of the DSD_TILE_CLOCK build: tile times, how
# busy the warp slots were, and how long the batch's last tiles ran after the counter ran dry.
import array, os, statistics
os.environ["DSD_GPU_TILE_CLOCK"] = "1"
from dsd.daemon.gpu import GpuDecoder, VulkanDevice
from dsd.bench.gpu import _nvcomp_contender
from tiles import conformance_mix, game_streams, tile_input_sizes, time_decoder

BASE = int(os.environ.get("TILE_ORDER_BASE_MIB", "512"))
SIZES = [int(x) for x in os.environ.get("TILE_ORDER_MIB", "256 512 1024").split()]
SHADER = os.environ.get("TILE_ORDER_SHADER", "wave32")
DEFAULT = os.environ.get("TILE_ORDER_SPV", "gdeflate_wave32")
base = game_streams(BASE)
dev = VulkanDevice()
print(f"device clock available: {dev.tile_clock}", flush=True)


def timed(batch, label, spv=DEFAULT, order="off", fn=None):  # batch order unless told
    os.environ["DSD_GPU_SPV"] = f"{spv}:4"
    os.environ["DSD_GPU_TILE_ORDER"] = order
    d = GpuDecoder(dev, shader=SHADER)
    d.tile_order_fn = fn
    try:
        clock = time_decoder(d, batch, label)
        return clock if spv.endswith("_clock") else None
    finally:
        d.close()


def timeline(raw, sizes, label):
    w = array.array("I", raw)
    n = len(w) // 4
    g = w[0::4]
    t0 = w[1::4]
    first = min(t0)
    start = [(x - first) & 0xFFFFFFFF for x in t0]
    end = [(x - first) & 0xFFFFFFFF for x in w[2::4]]
    dur = [b - a for a, b in zip(start, end)]
    slot = [x & 0xFFFF for x in w[3::4]]
    steps = [x >> 16 for x in w[3::4]]
    span = max(end)
    slots = len(set(slot))
    last_start = max(start)
    ds = sorted(dur)
    q = lambda p: ds[min(n - 1, int(p * n))]
    busy = sum(dur) / (slots * span)
    # When did the first slot go idle for good (its last tile's end)?
    last_end_per_slot = {}
    for e, s_ in zip(end, slot):
        last_end_per_slot[s_] = max(last_end_per_slot.get(s_, 0), e)
    first_idle = min(last_end_per_slot.values())
    by_g_size = [sizes[x] for x in g]
    def corr(a, b):
        ma, mb = statistics.fmean(a), statistics.fmean(b)
        num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
        den = (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5
        return num / den if den else 0.0
    print(f"  timeline {label}: {n} tiles on {slots} slots, span {span / 1e6:.3f} ms (clock units/1e6); tile time "
          f"min {ds[0] / 1e6:.3f} p10 {q(.1) / 1e6:.3f} median {q(.5) / 1e6:.3f} p90 {q(.9) / 1e6:.3f} max {ds[-1] / 1e6:.3f}; "
          f"slots busy {busy * 100:.1f}%; last hand-out at {last_start / span * 100:.1f}% of the span, "
          f"first slot idle for good at {first_idle / span * 100:.1f}%; "
          f"corr(time, input bytes) {corr(dur, by_g_size):+.2f}, corr(time, rounds) {corr(dur, steps):+.2f}", flush=True)
    # The tile's time by its batch index, for the oracle order.
    by_tile = [0] * n
    for x, d_ in zip(g, dur):
        by_tile[x] = d_
    return by_tile


def ordered_by(how, views, records, tiles):
    """The orders measured against the default (run 22): by compressed size, either way, or by
    compression ratio; "cost" is the decoder's own (DSD_GPU_TILE_ORDER=cost)."""
    sizes = tile_input_sizes(views, records, tiles)
    if how == "ratio":
        outs = [65536] * tiles
        for rec in records:
            outs[rec[5] + rec[4].num_tiles - 1] = rec[4].last_size
        key = [o / max(i, 1) for o, i in zip(outs, sizes)]
        return sorted(range(tiles), key=key.__getitem__, reverse=True)
    return sorted(range(tiles), key=sizes.__getitem__, reverse=how == "size")


def plan(batch):
    """Tile input/output sizes by batch tile index (the decoder's helpers on a plan of the batch)."""
    from dsd.daemon.gpu.container import plan_stream
    recs, at = [], 0
    views = [memoryview(b) for b, _ in batch]
    for i, v in enumerate(views):
        p = plan_stream(v, batch[i][1])
        recs.append((i, 0, len(v), 0, p, at))
        at += p.num_tiles
    return views, recs, at


def nv(batch, label, order=None):
    r = _nvcomp_contender([b for b, _ in batch], [s for _, s in batch], 7, "", chunk_order=order)
    print(f"  nvCOMP, {label:26s} {sum(s for _, s in batch) / 2**20:5.0f} MiB  median {r.get('gbps') or 0:6.2f} GB/s  "
          f"failed {r.get('failed_chunks')} {r.get('why', '')}", flush=True)


ORDERS = os.environ.get("TILE_ORDER_ORDERS", "size size_asc cost ratio").split()
C = os.environ.get("CONF", "").rstrip("/") + "/"
batches = [(f"game {mib} MiB", [(base[i % len(base)], 1 << 20) for i in range(mib)]) for mib in SIZES]
if os.path.exists(C + "MANIFEST.tsv"):
    batches.append(("conformance mix 512 MiB", [(b, sz) for b, sz, _ in conformance_mix(C)]))
for name, batch in batches:
    views, recs, at = plan(batch)
    sizes = tile_input_sizes(views, recs, at)
    print(f"== {name}: {at} tiles; tile input bytes min {min(sizes)} median {sorted(sizes)[at // 2]} max {max(sizes)}", flush=True)
    timed(batch, "batch order")
    for extra in os.environ.get("TILE_ORDER_EXTRA", "").split():
        timed(batch, f"{extra}, batch order", spv=extra)
    for o in ORDERS:
        if o in ("cost", "off"):
            timed(batch, f"DSD_GPU_TILE_ORDER={o}", order=o)
        else:
            timed(batch, f"order: {o}", fn=lambda v, r, n, o=o: ordered_by(o, v, r, n))
    raw = timed(batch, "clock build, batch order", spv=DEFAULT + "_clock")
    if raw is None or not any(raw):
        print("  no tile clock; skipping the oracle", flush=True)
    else:
        cost = timeline(raw, sizes, "batch order")
        oracle = sorted(range(at), key=cost.__getitem__, reverse=True)
        timed(batch, "oracle: longest measured first", fn=lambda v, r, n: oracle)
    timed(batch, "batch order again")
    if os.environ.get("TILE_ORDER_NV", "1") == "1":
        nv(batch, "batch order")
        nv(batch, "smallest input first", order=sorted(range(at), key=sizes.__getitem__))
