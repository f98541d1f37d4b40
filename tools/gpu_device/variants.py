# A/B and ablations of wave32 builds, on two 512 MiB batches: replicated conformance streams
# (reference encoder, level 9) and the bench's game-like corpus (dsd codec, level 9).
import os, sys, time, hashlib
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "py"))
from dsd.daemon.gpu import GpuDecoder
from dsd.bench.gpu import game_like_corpus
from dsd.codec import gdeflate
C = os.path.join(os.path.dirname(__file__), "conf") + "/"
mix = [("mixed-8400000.9.gdef", 8400000), ("rand-524288.9.gdef", 524288), ("rand-524288.9.gdef", 524288),
       ("text-1000000.9.gdef", 1000000), ("records-250000.9.gdef", 250000), ("code-200000.9.gdef", 200000),
       ("mixed-8400000.1.gdef", 8400000), ("rand-524288.1.gdef", 524288), ("rand-524288.12.gdef", 524288)]
blobs = {n: open(C + n, 'rb').read() for n, _ in mix}
conf, tot = [], 0
while tot < (512 << 20):
    for n, s in mix:
        conf.append((blobs[n], s)); tot += s
t = time.time()
corpus = game_like_corpus(512 << 20)
game = [(gdeflate.compress(corpus[o:o + (1 << 20)], level=9, threads=0), 1 << 20) for o in range(0, len(corpus), 1 << 20)]
print(f"corpus built+compressed in {time.time()-t:.1f}s")
game_sha = hashlib.sha256(corpus).hexdigest()
del corpus
for name, batch in (("conformance-mix", conf), ("game-corpus", game)):
    tot = sum(s for _, s in batch); comp = sum(len(b) for b, _ in batch)
    print(f"== {name}: {len(batch)} streams, {tot/2**20:.0f} MiB, ratio {tot/comp:.2f}", flush=True)
    for spv, per, pers in [("gdeflate_wave32", 4, "1"), ("gdeflate_wave32", 4, "0"), ("gdeflate_wave32_coherent", 4, "1"),
                     ("gdeflate_wave32_noparcopy", 4, "1"), ("gdeflate_wave32_solo16", 4, "1"), ("gdeflate_wave32_solo256", 4, "1"),
                     ("gdeflate_wave32_s2", 2, "1"), ("gdeflate_wave32_s8", 8, "1")]:
        os.environ["DSD_GPU_SPV"] = f"{spv}:{per}"
        os.environ["DSD_GPU_PERSISTENT"] = pers
        d = GpuDecoder(shader="wave32")
        res = d.decode_batch_pool(batch)
        assert all(r is None for r in res), [r for r in res if r][:2]
        same = "-"
        if True:
            h = hashlib.sha256(); pos = 0
            for _, s in batch:
                h.update(d.read_pool_output(pos, s)); pos = (pos + s + 255) // 256 * 256
            same = h.hexdigest() == game_sha if name == "game-corpus" else h.hexdigest()[:12]
        t0 = time.time()
        while time.time() - t0 < 0.7:
            d.decode_batch_resident(batch)
        ts = []
        for _ in range(5):
            d.decode_batch_resident(batch); ts.append(d.statistics().last_batch.dispatch_seconds)
        ts.sort()
        print(f"  {spv:34s} persistent={pers} median {ts[2]*1e3:7.1f} ms = {tot/ts[2]/1e9:6.2f} GB/s (best {tot/ts[0]/1e9:6.2f}); output == original: {same}", flush=True)
        d.close()
