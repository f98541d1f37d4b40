# Dispatch overhead of a one-tile batch under each submit/completion mode, plus the driver's floor
# (a command buffer holding only two timestamps, submitted and waited by the same code).
import os, sys, time, statistics
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "py"))
from dsd.bench.gpu import _dispatch_overhead, game_like_corpus
from dsd.codec import gdeflate
from dsd.daemon.gpu import GpuDecoder

corpus = game_like_corpus(int(os.environ.get("DISPATCH_MIB", "32")) << 20)
items = [(gdeflate.compress(corpus[o:o + (1 << 20)], level=6, threads=0), 1 << 20) for o in range(0, len(corpus), 1 << 20)]
for submit, sync in [m.split("/") for m in os.environ.get("MODES", "auto/auto native/fence python/timeline python/fence").split()]:
    os.environ["DSD_GPU_SUBMIT"], os.environ["DSD_GPU_SYNC"] = submit, sync
    d = GpuDecoder()
    d.decode_batch_pool(items)
    r = _dispatch_overhead(d, items)
    # Floor: the same submit/wait path on a command buffer with only the timestamps.
    vk, cmd, q = d.vk, d._cmd, d._queries
    d._recorded = None
    vk.vkResetCommandBuffer(cmd, 0)
    vk.vkBeginCommandBuffer(cmd, vk.VkCommandBufferBeginInfo(sType=vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO))
    vk.vkCmdResetQueryPool(cmd, q, 0, 2)
    vk.vkCmdWriteTimestamp(cmd, vk.VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, q, 0)
    vk.vkCmdWriteTimestamp(cmd, vk.VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, q, 1)
    vk.vkEndCommandBuffer(cmd)
    host = []
    for _ in range(400):
        res = {}
        t = time.perf_counter()
        d._submit_and_wait(cmd, spin=True, result=res)
        host.append(time.perf_counter() - t)
    r["empty_submit_wait_us"] = round(statistics.median(host) * 1e6, 1)
    print(f"{submit:6s} {sync:8s} {r}", flush=True)
    d.close()
