# Shared by the tile-order tools (tile_order.py, tile_costs.py): per-tile sizes of a planned batch.
import array


def tile_input_sizes(views, records, tiles):
    """Compressed bytes of every tile, by batch tile index (format doc §1: table entry 0 is the
    last tile's size, entry i > 0 tile i's offset)."""
    sizes = [0] * tiles
    for idx, _at, _ln, _out, p, base in records:
        n = p.num_tiles
        table = array.array("I", bytes(views[idx][8: 8 + 4 * n]))
        for i in range(n - 1):
            sizes[base + i] = (table[i + 1] - (table[i] if i else 0)) & 0xFFFFFFFF
        sizes[base + n - 1] = table[0]
    return sizes


# The reference encoder's streams that variants.py times as the "conformance mix".
CONF_MIX = [("mixed-8400000.9.gdef", 8400000), ("rand-524288.9.gdef", 524288), ("rand-524288.9.gdef", 524288),
            ("text-1000000.9.gdef", 1000000), ("records-250000.9.gdef", 250000), ("code-200000.9.gdef", 200000),
            ("mixed-8400000.1.gdef", 8400000), ("rand-524288.1.gdef", 524288), ("rand-524288.12.gdef", 524288)]


def conformance_mix(conf_dir, mib=512):
    """The mix replicated to `mib` MiB of output: (stream, decoded size, file name) triples."""
    blobs = {n: open(conf_dir.rstrip("/") + "/" + n, "rb").read() for n, _ in CONF_MIX}
    out, tot = [], 0
    while tot < (mib << 20):
        for n, sz in CONF_MIX:
            out.append((blobs[n], sz, n))
            tot += sz
    return out


def game_streams(mib):
    """The bench's game-like corpus, `mib` MiB in 1 MiB level-9 streams, and its build time."""
    import time
    from dsd.bench.gpu import game_like_corpus
    from dsd.codec import gdeflate

    t = time.time()
    corpus = game_like_corpus(mib << 20)
    streams = [gdeflate.compress(corpus[o:o + (1 << 20)], level=9, threads=0) for o in range(0, len(corpus), 1 << 20)]
    print(f"corpus built+compressed in {time.time() - t:.1f}s; ratio {len(corpus) / sum(map(len, streams)):.3f}",
          flush=True)
    return streams


def warm_up(d, batch):
    """Uploads `batch` ((stream, size) pairs) to decoder `d`'s pool, checks that every stream
    decodes, then keeps the GPU busy for 0.7 s (an idle H200 clocks down and times 5x slow)."""
    import time

    res = d.decode_batch_pool(batch)
    assert all(r is None for r in res), [r for r in res if r][:2]
    t0 = time.time()
    while time.time() - t0 < 0.7:
        d.decode_batch_resident(batch)


def time_decoder(d, batch, label, width=34):
    """Decode-only GB/s of `batch` on decoder `d` after warm_up(): the median of 7
    GPU-timestamped runs. Returns the last run's tile clock (DSD_TILE_CLOCK builds)."""
    warm_up(d, batch)
    ts = []
    for _ in range(7):
        d.decode_batch_resident(batch)
        ts.append(d.statistics().last_batch.dispatch_seconds)
    ts.sort()
    tot = sum(s for _, s in batch)
    print(f"  {label:{width}s} {tot / 2**20:5.0f} MiB  median {tot / ts[3] / 1e9:6.2f} GB/s  "
          f"(best {tot / ts[0] / 1e9:6.2f}, worst {tot / ts[-1] / 1e9:6.2f})", flush=True)
    return d.last_tile_clock
