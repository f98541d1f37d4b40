# Dispatch overhead of a one-tile batch (dsd bench gpu's definition) under each submit/completion
# mode, then where the time goes: the driver's floor (a command buffer holding only the two
# timestamps), an empty dispatch (no tile), a stored-block tile (no Huffman tables) against the
# fixed-Huffman tile the bench uses, and the Python part alone (the submitter stubbed out).
import os, sys, time, statistics, random
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "py"))
from dsd.bench.gpu import _dispatch_overhead, _one_tile_stream, game_like_corpus
from dsd.codec import gdeflate
from dsd.daemon.gpu import GpuDecoder

corpus = game_like_corpus(int(os.environ.get("DISPATCH_MIB", "32")) << 20)
items = [(gdeflate.compress(corpus[o:o + (1 << 20)], level=6, threads=0), 1 << 20) for o in range(0, len(corpus), 1 << 20)]
med = lambda xs: round(statistics.median(xs) * 1e6, 1)


def own_cmd(d, body):
    """Records body(cmd) between the two timestamps into the decoder's command buffer, then
    times 400 submit+wait round trips of it: (host µs, GPU µs), medians."""
    vk, cmd, q = d.vk, d._cmd, d._queries
    d._recorded = None
    vk.vkResetCommandBuffer(cmd, 0)
    vk.vkBeginCommandBuffer(cmd, vk.VkCommandBufferBeginInfo(sType=vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO))
    vk.vkCmdResetQueryPool(cmd, q, 0, 2)
    vk.vkCmdWriteTimestamp(cmd, vk.VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, q, 0)
    body(cmd)
    vk.vkCmdWriteTimestamp(cmd, vk.VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, q, 1)
    vk.vkEndCommandBuffer(cmd)
    host, gpu = [], []
    for _ in range(400):
        res = {}
        t = time.perf_counter()
        d._submit_and_wait(cmd, spin=True, result=res)
        host.append(time.perf_counter() - t)
        gpu.append(res.get("dispatch") or 0.0)
    d._recorded = None
    return med(host), med(gpu)


def tile_times(d):
    """(host µs, GPU µs) of one-tile batches: the bench's fixed-Huffman tile and a stored block."""
    rng = random.Random(5)
    stored = gdeflate.compress(bytes(rng.getrandbits(8) for _ in range(1000)), level=9)
    out = {}
    for name, tile in (("fixed_tile", [(_one_tile_stream(), 1)]), ("stored_tile", [(stored, 1000)])):
        hs, gs = [], []
        for _ in range(420):
            t = time.perf_counter()
            assert d.decode_batch_pool(tile) == [None]
            hs.append(time.perf_counter() - t)
            gs.append(d.statistics().last_batch.dispatch_seconds)
        out[name + "_host_gpu_us"] = (med(hs[20:]), med(gs[20:]))
    return out


for submit, sync in [m.split("/") for m in os.environ.get("MODES", "auto/auto native/fence python/timeline python/fence").split()]:
    os.environ["DSD_GPU_SUBMIT"], os.environ["DSD_GPU_SYNC"] = submit, sync
    d = GpuDecoder()
    d.decode_batch_pool(items)
    r = _dispatch_overhead(d, items)
    if submit == "auto":
        # The default mode again, ROUNDS more times (each 400 one-tile batches after a warm-up):
        # a median that holds across rounds, not one lucky round.
        rounds = [_dispatch_overhead(d, items) for _ in range(int(os.environ.get("ROUNDS", "6")))]
        print("auto rounds: batch_host_us", [x["batch_host_us"] for x in rounds],
              "p10_p90", [x["batch_host_p10_p90_us"] for x in rounds],
              "submit_wait_us", [x["submit_wait_us"] for x in rounds],
              "one_tile_gpu_us", [x["one_tile_gpu_us"] for x in rounds], flush=True)
    r["empty_cmd_host_gpu_us"] = own_cmd(d, lambda cmd: None)
    if submit == "auto":
        vk = d.vk

        def empty_dispatch(cmd):
            vk.vkCmdBindPipeline(cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, d._pipeline)
            vk.vkCmdBindDescriptorSets(cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, d._layout, 0, 1, [d._set], 0, None)
            push = vk.ffi.new("uint32_t[4]", [0, 1, d.step_budget, 1])
            vk.vkCmdPushConstants(cmd, d._layout, vk.VK_SHADER_STAGE_COMPUTE_BIT, 0, 16, push)
            vk.vkCmdDispatch(cmd, 1, 1, 1)
        r["empty_dispatch_host_gpu_us"] = own_cmd(d, empty_dispatch)
        r.update(tile_times(d))

        class Stub:  # the Python part alone: no submit, no wait
            def run(self, *a):
                return (0, 0, 1, True, 1000)
        real, d._submitter = d._submitter, Stub()
        tiny = [(_one_tile_stream(), 1)]
        for _ in range(200):
            d.decode_batch_pool(tiny)
        t = time.perf_counter()
        for _ in range(2000):
            d.decode_batch_pool(tiny)
        r["python_only_us"] = round((time.perf_counter() - t) / 2000 * 1e6, 2)
        # What one 4-byte read costs: the status buffer (the host's per-batch read, host memory),
        # the control block (device memory the host maps; only written now), the staging buffer.
        # And one 4-byte write of the tile counter and one 32-byte stream record (both mapped
        # device memory), the writes each batch makes.
        for role in ("status", "control", "in_stage"):
            mv = d._buffers[role].mapping
            t = time.perf_counter()
            for _ in range(2000):
                mv[4:8] != b"\0\0\0\0"
            r[f"read4_{role}_us"] = round((time.perf_counter() - t) / 2000 * 1e6, 3)
        for role, n in (("control", 4), ("streams", 32), ("in_stage", 32)):
            mv, src = d._buffers[role].mapping, bytes(n)
            t = time.perf_counter()
            for _ in range(2000):
                mv[:n] = src
            r[f"write{n}_{role}_us"] = round((time.perf_counter() - t) / 2000 * 1e6, 3)
        d._submitter = real
    print(f"{submit:6s} {sync:8s} {r}", flush=True)
    d.close()

# One-tile times of other shader builds (DSD_GPU_SPV), after a warm-up on the corpus.
for spv in os.environ.get("DISPATCH_SPVS", "").split():
    os.environ["DSD_GPU_SPV"] = spv
    d = GpuDecoder()
    d.decode_batch_pool(items)
    t0 = time.time()
    while time.time() - t0 < 0.5:
        d.decode_batch_resident(items)
    print(f"one-tile batches, {spv}: {tile_times(d)}", flush=True)
    d.close()
os.environ.pop("DSD_GPU_SPV", None)
