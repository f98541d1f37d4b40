import os, sys, time, hashlib, glob
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "py"))
from dsd.daemon.gpu import GpuDecoder, describe
C = (sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "conf")).rstrip("/") + "/"
man = {l.split('\t')[0]: l.split('\t')[4] for l in open(C + "MANIFEST.tsv").read().splitlines()[1:]}
names = sorted(man)
bad = sorted(os.path.basename(p) for p in glob.glob(C + "bad-*.gdef"))
outs = {}
for shader in ("wave32", "shared"):
    for persistent in (("1", "0") if shader == "wave32" else ("0",)):
        os.environ["DSD_GPU_PERSISTENT"] = persistent
        # WAVE32_SPV=name: check an A/B build (dsd/shaders/name.spv) in place of the wave32 default.
        if shader == "wave32" and os.environ.get("WAVE32_SPV"):
            os.environ["DSD_GPU_SPV"] = os.environ["WAVE32_SPV"]
        else:
            os.environ.pop("DSD_GPU_SPV", None)
        t = time.time()
        d = GpuDecoder(shader=shader)
        print(f"== {shader} persistent={persistent} init {time.time()-t:.3f}s dev={d.device.info.name} sg={d.device.info.subgroup_size} nv={d.device.info.nv_memory_decompression}", flush=True)
        items = [(open(C + n, 'rb').read(), None) for n in names + bad]
        t = time.time()
        res = d.decode_batch(items)
        dt = time.time() - t
        okc = sum(1 for n, r in zip(names, res) if isinstance(r, bytes) and hashlib.sha256(r).hexdigest() == man[n])
        fails = [(n, str(r)[:60]) for n, r in zip(names, res) if not (isinstance(r, bytes) and hashlib.sha256(r).hexdigest() == man[n])]
        errs = [(n, getattr(r, 'code', 'OK!?')) for n, r in zip(bad, res[len(names):])]
        print(f"good ok {okc}/{len(names)} in {dt:.3f}s; fails={fails}; bad->{errs}", flush=True)
        outs[(shader, persistent)] = [hashlib.sha256(r).hexdigest() if isinstance(r, bytes) else repr(r) for r in res]
        d.close()
# The fallback submit/completion paths (Python submit, fence) on the wave32 build.
os.environ["DSD_GPU_PERSISTENT"] = "1"
if os.environ.get("WAVE32_SPV"):
    os.environ["DSD_GPU_SPV"] = os.environ["WAVE32_SPV"]
for submit, sync in (("python", "timeline"), ("native", "fence"), ("python", "fence")):
    os.environ["DSD_GPU_SUBMIT"], os.environ["DSD_GPU_SYNC"] = submit, sync
    d = GpuDecoder(shader="wave32")
    res = d.decode_batch([(open(C + n, 'rb').read(), None) for n in names + bad])
    outs[("wave32", f"1 {submit}/{sync}")] = [hashlib.sha256(r).hexdigest() if isinstance(r, bytes) else repr(r) for r in res]
    print(f"== wave32 {d.completion}: bad->{[getattr(r, 'code', 'OK!?') for r in res[len(names):]]}", flush=True)
    d.close()
del os.environ["DSD_GPU_SUBMIT"], os.environ["DSD_GPU_SYNC"]
ref = outs[("shared", "0")]
for k, v in outs.items():
    # A bad stream with several bad tiles reports the first tile to fail, which depends on the
    # order the groups ran in: compare only that every bad stream is an error.
    print(k, "good streams byte-identical to shared/one-tile-per-group:", v[:len(names)] == ref[:len(names)],
          "; every bad stream an error:", all(x.startswith("GpuDecodeError") for x in v[len(names):]))
os.environ.pop("DSD_GPU_SPV", None)
# NV memory decompression on the conformance streams
os.environ["DSD_GPU_PERSISTENT"] = "1"
d = GpuDecoder()
if d.device.info.nv_memory_decompression:
    items = [(open(C + n, 'rb').read(), None) for n in names]
    try:
        res = d.decode_batch_nv(items)
        offs, pos = [], 0
        from dsd.daemon.gpu.container import plan_stream
        sizes = [plan_stream(memoryview(x[0]), None).out_len for x in items]
        for s in sizes:
            offs.append(pos); pos = (pos + s + 255) // 256 * 256
        ok = 0; bad = []
        for n, o, s, r in zip(names, offs, sizes, res):
            got = d.read_pool_output(o, s) if s else b""
            if r is None and hashlib.sha256(got).hexdigest() == man[n]: ok += 1
            else: bad.append(n)
        print(f"NV memory decompression: {ok}/{len(names)} conformance streams match; bad={bad}", flush=True)
    except Exception as exc:
        import traceback; traceback.print_exc()
else:
    print("no NV memory decompression")
d.close()
