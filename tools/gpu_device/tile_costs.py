# Per-tile costs for fitting a hand-out order: the DSD_TILE_CLOCK build decodes the bench's
# game-like corpus (512 MiB, 1 MiB streams) and the conformance mix in batch order and writes one
# row per tile to $OUT/tile_costs_<batch>.tsv: batch tile, stream label, compressed bytes,
# decoded bytes, start and end on the device clock, rounds. Median of 3 runs per tile.
import array, os, statistics
os.environ["DSD_GPU_TILE_CLOCK"] = "1"
from dsd.daemon.gpu import GpuDecoder, VulkanDevice
from dsd.daemon.gpu.container import plan_stream
from tiles import conformance_mix, game_streams, tile_input_sizes, warm_up

OUT = os.environ["OUT"]
C = os.environ["CONF"].rstrip("/") + "/"
game = [(b, 1 << 20, "game") for b in game_streams(512)]
conf = conformance_mix(C)
dev = VulkanDevice()
os.environ["DSD_GPU_SPV"] = "gdeflate_wave32_clock:4"
os.environ["DSD_GPU_TILE_ORDER"] = "off"  # batch order: the costs as the tiles come
for name, batch in (("game", game), ("conf", conf)):
    items = [(b, s) for b, s, _ in batch]
    views = [memoryview(b) for b, _, _ in batch]
    recs, at, labels, outs = [], 0, [], []
    for i, (v, (_, s, lab)) in enumerate(zip(views, batch)):
        p = plan_stream(v, s)
        recs.append((i, 0, len(v), 0, p, at))
        at += p.num_tiles
        labels += [lab] * p.num_tiles
        outs += [65536] * (p.num_tiles - 1) + [p.last_size]
    sizes = tile_input_sizes(views, recs, at)
    d = GpuDecoder(dev, shader="wave32")
    warm_up(d, items)
    runs = []
    for _ in range(3):
        d.decode_batch_resident(items)
        w = array.array("I", d.last_tile_clock)
        per = {}
        for k in range(at):
            g, a, b, sr = w[4 * k: 4 * k + 4]
            per[g] = ((b - a) & 0xFFFFFFFF, sr >> 16)
        runs.append(per)
    d.close()
    with open(os.path.join(OUT, f"tile_costs_{name}.tsv"), "w") as f:
        f.write("tile\tstream\tin_bytes\tout_bytes\tns\trounds\n")
        for g in range(at):
            ns = statistics.median(r[g][0] for r in runs)
            f.write(f"{g}\t{labels[g]}\t{sizes[g]}\t{outs[g]}\t{ns}\t{runs[0][g][1]}\n")
    print(f"{name}: {at} tiles written", flush=True)
