# A/B builds of the wave32 shader (tools/gpu_device/build_variants.sh): each one is first checked on
# every conformance stream (manifest SHA-256; every bad-*.gdef an error), then timed on two
# 512 MiB batches, replicated conformance streams and the bench's game-like corpus (output hashed
# against the original before timing). GPU timestamps, median of 5 after a 0.7 s warm-up.
import os, sys, time, hashlib, glob
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "py"))
from dsd.daemon.gpu import GpuDecoder, VulkanDevice
from dsd.bench.gpu import game_like_corpus
from dsd.codec import gdeflate
C = os.environ.get("CONF", os.path.join(os.path.dirname(__file__), "conf")).rstrip("/") + "/"  # run.sh layout: .carry/conf
man = {l.split('\t')[0]: l.split('\t')[4] for l in open(C + "MANIFEST.tsv").read().splitlines()[1:]}
names = sorted(man)
bad = sorted(os.path.basename(p) for p in glob.glob(C + "bad-*.gdef"))
conf_items = [(open(C + n, 'rb').read(), None) for n in names + bad]
SHADER = os.environ.get("VARIANT_SHADER", "wave32")
MIB = int(os.environ.get("VARIANT_MIB", "512"))
VARIANTS = [v.split(":") for v in os.environ.get("VARIANTS", "gdeflate_wave32:4").split()]

mix = [("mixed-8400000.9.gdef", 8400000), ("rand-524288.9.gdef", 524288), ("rand-524288.9.gdef", 524288),
       ("text-1000000.9.gdef", 1000000), ("records-250000.9.gdef", 250000), ("code-200000.9.gdef", 200000),
       ("mixed-8400000.1.gdef", 8400000), ("rand-524288.1.gdef", 524288), ("rand-524288.12.gdef", 524288)]
blobs = {n: open(C + n, 'rb').read() for n, _ in mix}
conf, tot = [], 0
while tot < (MIB << 20):
    for n, s in mix:
        conf.append((blobs[n], s)); tot += s
t = time.time()
corpus = game_like_corpus(MIB << 20)
game = [(gdeflate.compress(corpus[o:o + (1 << 20)], level=9, threads=0), 1 << 20) for o in range(0, len(corpus), 1 << 20)]
print(f"corpus built+compressed in {time.time()-t:.1f}s", flush=True)
game_sha = hashlib.sha256(corpus).hexdigest()
del corpus
# One device for every build (a new instance per decoder ran the driver out of something after
# ~30); its pipelines report the driver's compile statistics (registers, shared memory...).
os.environ["DSD_GPU_PIPELINE_STATS"] = "1"
dev = VulkanDevice()
ok_variants = []
for spv, per in VARIANTS:
    os.environ["DSD_GPU_SPV"] = f"{spv}:{per}"
    d = GpuDecoder(dev, shader=SHADER)
    try:
        print(f"pipeline {spv}:{per}: {d.pipeline_statistics()}", flush=True)
    except Exception as exc:  # profiling only
        print(f"pipeline {spv}:{per}: statistics unavailable: {exc!r}", flush=True)
    res = d.decode_batch(conf_items)
    good = sum(1 for n, r in zip(names, res) if isinstance(r, bytes) and hashlib.sha256(r).hexdigest() == man[n])
    errs = [getattr(r, "code", None) for r in res[len(names):]]
    correct = good == len(names) and all(errs)
    print(f"conformance {spv}:{per}: good {good}/{len(names)}, bad streams -> {errs}: {'OK' if correct else 'WRONG'}", flush=True)
    d.close()
    if correct:
        ok_variants.append((spv, per))
rows = []
for name, batch in (("conformance-mix", conf), ("game-corpus", game)):
    tot = sum(s for _, s in batch); comp = sum(len(b) for b, _ in batch)
    print(f"== {name}: {len(batch)} streams, {tot/2**20:.0f} MiB, ratio {tot/comp:.2f}", flush=True)
    ref = None
    for spv, per in ok_variants:
        os.environ["DSD_GPU_SPV"] = f"{spv}:{per}"
        d = GpuDecoder(dev, shader=SHADER)
        res = d.decode_batch_pool(batch)
        assert all(r is None for r in res), [r for r in res if r][:2]
        h = hashlib.sha256(); pos = 0
        for _, s in batch:
            h.update(d.read_pool_output(pos, s)); pos = (pos + s + 255) // 256 * 256
        if name == "game-corpus":
            same = h.hexdigest() == game_sha
        else:
            ref = ref or h.hexdigest()
            same = h.hexdigest() == ref
        t0 = time.time()
        while time.time() - t0 < 0.7:
            d.decode_batch_resident(batch)
        ts = []
        for _ in range(5):
            d.decode_batch_resident(batch); ts.append(d.statistics().last_batch.dispatch_seconds)
        ts.sort()
        rows.append((name, spv, per, tot / ts[2] / 1e9, same))
        print(f"  {spv:28s}:{per} median {ts[2]*1e3:7.2f} ms = {tot/ts[2]/1e9:6.2f} GB/s (best {tot/ts[0]/1e9:6.2f}); output correct: {same}", flush=True)
        d.close()
print("summary (GB/s):")
for spv, per in ok_variants:
    r = {n: f"{g:6.2f}{'' if s else ' WRONG'}" for n, s2, p, g, s in rows if s2 == spv and p == per}
    print(f"  {spv + ':' + per:32s} conf {r.get('conformance-mix')}  game {r.get('game-corpus')}")
dev.close()
