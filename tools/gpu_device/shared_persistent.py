# The shared-memory build with persistent groups that each decode many tiles (few groups): every
# conformance stream against its manifest SHA-256, every bad stream an error, and the game-like
# corpus against its hash. On lavapipe this combination loses tiles (see docs/gpu.md); this
# checks whether a real GPU driver runs it right.
import glob, hashlib, os, time
os.environ["DSD_GPU_PERSISTENT"] = "1"
from dsd.daemon.gpu import GpuDecoder, VulkanDevice
from dsd.bench.gpu import game_like_corpus
from dsd.codec import gdeflate

C = os.environ["CONF"].rstrip("/") + "/"
man = {l.split("\t")[0]: l.split("\t")[4] for l in open(C + "MANIFEST.tsv").read().splitlines()[1:]}
names = sorted(man)
bad = sorted(os.path.basename(p) for p in glob.glob(C + "bad-*.gdef"))
items = [(open(C + n, "rb").read(), None) for n in names + bad]
corpus = game_like_corpus(64 << 20)
game = [(gdeflate.compress(corpus[o:o + (1 << 20)], level=9, threads=0), 1 << 20) for o in range(0, len(corpus), 1 << 20)]
dev = VulkanDevice()
for groups in (1, 8, 64, 4096):
    d = GpuDecoder(dev, shader="shared")
    d.max_groups = lambda g=groups: g
    t = time.time()
    res = d.decode_batch(items)
    good = sum(1 for n, r in zip(names, res) if isinstance(r, bytes) and hashlib.sha256(r).hexdigest() == man[n])
    errs = [getattr(r, "code", None) for r in res[len(names):]]
    out = d.decode_batch(game)
    same = all(isinstance(r, bytes) for r in out) and hashlib.sha256(b"".join(out)).hexdigest() == hashlib.sha256(corpus).hexdigest()
    print(f"shared build, persistent, {groups} groups: conformance {good}/{len(names)}, bad -> {errs}; "
          f"game corpus 64 MiB correct: {same} ({time.time() - t:.1f}s)", flush=True)
    d.close()
