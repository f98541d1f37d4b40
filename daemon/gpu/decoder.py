"""GDeflate batch decoding on a Vulkan device with the shaders of shaders/.

One `GpuDecoder` owns a pipeline, one descriptor set, one command buffer, a timeline semaphore
(or a fence), a query pool for timestamps and a pool of buffers that only ever grows (so a
steady stream of batches allocates nothing). A batch is: copy every compressed stream into the
staging buffer, zero the control block through its mapping, record upload -> dispatch ->
readback (or reuse the recording), submit and wait (dsd._native.VkSubmitter: no Python between
the two), read the error count and, only if it is not zero, each stream's status word. A stream
whose data is bad gets a `GpuDecodeError` in its slot; the others are unaffected.
"""

from __future__ import annotations

import array
import ctypes
import os
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from . import spirv
from .container import TILE_BYTES, StreamPlan, plan_stream
from .device import Buffer, VulkanDevice
from .errors import GpuDecodeError, GpuError, GpuUnavailable

ENV_SHADER = "DSD_GPU_SHADER"  # wave32 | shared | auto (default): which shader variant
ENV_SUBMIT = "DSD_GPU_SUBMIT"  # native | python | auto (default): who submits and waits
ENV_SYNC = "DSD_GPU_SYNC"  # timeline | fence | auto (default): what signals a batch's end
DEFAULT_STEP_BUDGET = 1 << 19
WAVE32_TILES_PER_GROUP = 4
STREAM_RECORD = struct.Struct("<8I")
WAIT_TIMEOUT_NS = 120 * 10**9  # a batch that has not ended after this is an error, not a hang
SPIN_SECONDS = 0.0005
SPIN_NS = int(SPIN_SECONDS * 1e9)
ENV_TILE_ORDER = "DSD_GPU_TILE_ORDER"  # cost (default) | off: the order tiles are handed out in
TILE_ORDERS = ("cost", "off")
ORDER_MIN_TILES = 1024  # below this a batch is about one wave on a large GPU: every tile starts at once
SPIN_MAX_TILES = 256  # batches up to this many tiles poll their fence before blocking
# Storage buffers of the shader: input, output, stream records, control (tile counter), status.
BINDINGS = 5
_ZERO4 = bytes(4)

# One request: (compressed tile stream, any buffer; its decoded size, or None to take the header's).
Item = tuple


@dataclass(frozen=True)
class BatchStatistics:
    """Figures of the last batch: GPU time of the decode dispatch, the whole submit, bytes."""

    streams: int
    tiles: int
    compressed_bytes: int
    decoded_bytes: int
    dispatch_seconds: float | None
    submit_seconds: float
    host_seconds: float


@dataclass(frozen=True)
class DecoderStatistics:
    batches: int
    streams: int
    decoded_bytes: int
    errors: int
    shader: str
    device: str
    last_batch: BatchStatistics | None


@dataclass
class DeviceBatch:
    """Decoded streams left in a device-local buffer: stream i is bytes
    [offsets[i], offsets[i] + sizes[i]) of `buffer`, or results[i] is its error."""

    buffer: Buffer
    offsets: list[int]
    sizes: list[int]
    results: list[GpuDecodeError | None]
    _decoder: "GpuDecoder"

    def read(self, i: int) -> bytes:
        """Copies stream i back to the host (tests, debugging)."""
        return self._decoder._read_device(self.buffer, self.offsets[i], self.sizes[i])

    def export_fd(self) -> int:
        return self._decoder.device.export_fd(self.buffer)

    def release(self) -> None:
        if self.buffer is not None:
            self._decoder.device.destroy_buffer(self.buffer)
            self.buffer = None  # type: ignore[assignment]

    def __enter__(self) -> "DeviceBatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _tile_order_python(streams) -> bytes:
    """dsd._native.tile_order without the extension (same estimate, same order): the batch's
    tile indices, costliest first, cost = decoded bytes * decoded bytes / compressed bytes."""
    keys = []
    base = 0
    for data, n, last in streams:
        table = struct.unpack_from(f"<{n}I", data, 8)
        for i in range(n):
            start = table[i] if i else 0
            end = table[i + 1] if i + 1 < n else (start + table[0]) & 0xFFFFFFFF
            out = TILE_BYTES if i + 1 < n else last
            keys.append((-(out * out // max(end - start, 1)) if end >= start else -out * out, base + i))
        base += n
    keys.sort()
    order = array.array("I", [k for _, k in keys])
    if sys.byteorder != "little":
        order.byteswap()
    return order.tobytes()


try:
    from dsd._native import tile_order as _tile_order  # type: ignore[import-not-found]
except ImportError:  # the extension is not built: the same order, slower
    _tile_order = _tile_order_python


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


PARALLEL_COPY_MIN = 8 << 20
COPY_CHUNK = 4 << 20
_copy_pool: ThreadPoolExecutor | None = None


def _parallel_copy(pairs: list[tuple[memoryview, memoryview]]) -> None:
    """Copies each (dst, src) pair. Large batches use a few threads with ctypes.memmove, which
    releases the GIL: one Python thread copies only ~3-5 GB/s, less than a readback delivers."""
    global _copy_pool
    total = sum(len(src) for _dst, src in pairs)
    if total < PARALLEL_COPY_MIN:
        for dst, src in pairs:
            dst[: len(src)] = src
        return
    if _copy_pool is None:
        _copy_pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="dsd-gpu-copy")
    keep, jobs = [], []
    for dst, src in pairs:
        if not len(src):
            continue
        d = ctypes.c_char.from_buffer(dst)
        s = ctypes.c_char.from_buffer(src)
        keep += (d, s)
        da, sa = ctypes.addressof(d), ctypes.addressof(s)
        for off in range(0, len(src), COPY_CHUNK):
            jobs.append((da + off, sa + off, min(COPY_CHUNK, len(src) - off)))
    list(_copy_pool.map(lambda j: ctypes.memmove(*j), jobs))
    del keep


def _copy_sink(outputs, res: list, count: int):
    """A batch sink that copies each decoded stream into outputs[i] (all copies run when the
    last stream is reported, while the staging buffer is still this batch's)."""
    pairs: list[tuple[memoryview, memoryview]] = []

    def sink(i: int, mv: memoryview | None, err: GpuDecodeError | None) -> None:
        if err is None and mv is not None:
            dst = memoryview(outputs[i]).cast("B")
            if len(dst) < len(mv):
                err = GpuDecodeError(0, detail=f"output buffer of {len(dst)} bytes for {len(mv)} decoded bytes")
            else:
                pairs.append((dst[: len(mv)], mv))
        res.append(err)
        if len(res) == count:
            _parallel_copy(pairs)
            pairs.clear()

    return sink


class GpuDecoder:
    """Batched GDeflate decode on one Vulkan device."""

    def __init__(self, device: VulkanDevice | None = None, *, shader: str | None = None,
                 step_budget: int = DEFAULT_STEP_BUDGET, cache_dir: str | None = None) -> None:
        self._own_device = device is None
        self.device = device or VulkanDevice()
        self.vk = self.device.vk
        self.step_budget = step_budget
        self._lock = threading.Lock()
        self._buffers: dict[str, Buffer] = {}
        self._bound: tuple | None = None
        self._batches = self._streams = self._decoded = self._errors = 0
        self._last_raw: tuple | None = None
        self.closed = False
        try:
            self._choose_shader(shader or os.environ.get(ENV_SHADER, "auto"))
            self._make_pipeline(cache_dir)
            self._make_commands()
        except BaseException:
            self.close()
            raise

    # -- set-up -----------------------------------------------------------------------------------
    def _choose_shader(self, wanted: str) -> None:
        d = self.device
        vk = self.vk
        need = vk.VK_SUBGROUP_FEATURE_BALLOT_BIT | vk.VK_SUBGROUP_FEATURE_ARITHMETIC_BIT | vk.VK_SUBGROUP_FEATURE_SHUFFLE_BIT
        lo, hi = d.subgroup_range
        can32 = d.subgroup_ops & need == need and (d.subgroup_size == 32 or (d.size_control and lo <= 32 <= hi))
        if wanted not in ("auto", "wave32", "shared"):
            raise GpuUnavailable(f"{ENV_SHADER}={wanted!r}: expected wave32, shared or auto")
        if wanted == "wave32" and not can32:
            raise GpuUnavailable(f"{ENV_SHADER}=wave32 but the device cannot run 32-wide subgroups (size {d.subgroup_size})")
        self.shader = "wave32" if (wanted == "wave32" or (wanted == "auto" and can32)) else "shared"
        self.shader_reason = (
            f"{ENV_SHADER}={wanted}" if wanted != "auto"
            else ("subgroup size 32 available" if can32 else f"subgroup size {d.subgroup_size}: shared-memory lanes")
        )
        self._require32 = self.shader == "wave32" and d.subgroup_size != 32
        self.tiles_per_group = WAVE32_TILES_PER_GROUP if self.shader == "wave32" else 1
        if self.shader == "wave32":
            self.spv_name = "gdeflate_wave32" if d.memory_model else "gdeflate_wave32_coherent"
        else:
            self.spv_name = "gdeflate_lanes_shared"
        # Experiments only: DSD_GPU_SPV=name[:tiles_per_group] loads another build of the chosen
        # shader from dsd/shaders (A/B runs; tiles_per_group applies to wave32 builds).
        override = os.environ.get("DSD_GPU_SPV")
        if override:
            name, _, per = override.partition(":")
            self.spv_name = name
            if self.shader == "wave32":
                self.tiles_per_group = int(per or WAVE32_TILES_PER_GROUP)
        # Persistent groups pulling tiles from an atomic counter (format doc §4); off with
        # DSD_GPU_PERSISTENT=0, and off on CPU drivers, where one workgroup per tile is as good.
        env = os.environ.get("DSD_GPU_PERSISTENT")
        self.persistent = env != "0" if env is not None else d.info.kind != "cpu"
        # The order the counter hands tiles out in (persistent groups only): estimated costliest
        # first, so the batch's last, partly filled wave holds short tiles (docs/gpu.md, "Tile
        # order"; +13% on the H200's 512 MiB game-like batch), or "off" for batch order.
        self.tile_order = os.environ.get(ENV_TILE_ORDER, "cost")
        if self.tile_order not in TILE_ORDERS:
            raise GpuUnavailable(f"{ENV_TILE_ORDER}={self.tile_order!r}: expected one of {', '.join(TILE_ORDERS)}")
        self.tile_order_fn = None  # experiments: fn(views, records, tiles) -> sequence of tile indices
        self.last_tile_clock: bytes | None = None  # DSD_TILE_CLOCK builds: 4 words per handed-out tile

    def _cache_path(self, cache_dir: str | None) -> str:
        base = cache_dir or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dsd")
        info = self.device.info
        return os.path.join(base, f"pipeline-{info.vendor_id:04x}-{info.driver_version:08x}-{self.spv_name}.bin")

    def _make_pipeline(self, cache_dir: str | None) -> None:
        vk, dev = self.vk, self.device.device
        code = spirv.load_spirv(self.spv_name)
        smci = vk.VkShaderModuleCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, codeSize=len(code), pCode=code
        )
        self._module = vk.vkCreateShaderModule(dev, smci, None)
        bindings = [
            vk.VkDescriptorSetLayoutBinding(
                binding=i, descriptorType=vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount=1,
                stageFlags=vk.VK_SHADER_STAGE_COMPUTE_BIT,
            )
            for i in range(BINDINGS)
        ]
        dslci = vk.VkDescriptorSetLayoutCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, bindingCount=BINDINGS, pBindings=bindings
        )
        self._set_layout = vk.vkCreateDescriptorSetLayout(dev, dslci, None)
        pcr = vk.VkPushConstantRange(stageFlags=vk.VK_SHADER_STAGE_COMPUTE_BIT, offset=0, size=16)
        plci = vk.VkPipelineLayoutCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, setLayoutCount=1, pSetLayouts=[self._set_layout],
            pushConstantRangeCount=1, pPushConstantRanges=[pcr],
        )
        self._layout = vk.vkCreatePipelineLayout(dev, plci, None)

        self._cache_file = self._cache_path(cache_dir)
        initial = b""
        try:
            with open(self._cache_file, "rb") as f:
                initial = f.read()
        except OSError:
            pass
        init_buf = vk.ffi.from_buffer(initial) if initial else vk.ffi.NULL
        pcci = vk.VkPipelineCacheCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO, initialDataSize=len(initial), pInitialData=init_buf
        )
        self._cache = vk.vkCreatePipelineCache(dev, pcci, None)
        self.pipeline_cache_loaded = bool(initial)

        req = None
        flags = 0
        if self._require32:
            req = vk.VkPipelineShaderStageRequiredSubgroupSizeCreateInfo(
                sType=vk.VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
                requiredSubgroupSize=32,
            )
        if self.shader == "wave32" and self.device.full_subgroups:
            flags |= 0x2  # VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT
        stage = vk.VkPipelineShaderStageCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, pNext=req, flags=flags,
            stage=vk.VK_SHADER_STAGE_COMPUTE_BIT, module=self._module, pName="main",
        )
        cpci = vk.VkComputePipelineCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO, stage=stage, layout=self._layout,
            basePipelineIndex=-1,
            flags=vk.VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR if self.device.pipeline_stats else 0,
        )
        self._pipeline = vk.vkCreateComputePipelines(dev, self._cache, 1, [cpci], None)[0]
        self._save_cache()

    def pipeline_statistics(self) -> dict:
        """The driver's statistics of the decode pipeline (VK_KHR_pipeline_executable_properties;
        on NVIDIA: registers per thread, shared memory, instructions...), for profiling. Empty
        unless the device was opened with DSD_GPU_PIPELINE_STATS=1 and has the extension."""
        if not self.device.pipeline_stats:
            return {}
        vk, dev, ffi = self.vk, self.device.device, self.vk.ffi
        fn = ffi.cast("PFN_vkGetPipelineExecutableStatisticsKHR",
                      vk.lib.vkGetDeviceProcAddr(dev, b"vkGetPipelineExecutableStatisticsKHR"))
        info = ffi.new("VkPipelineExecutableInfoKHR*")
        info.sType = vk.VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR
        info.pipeline = self._pipeline
        info.executableIndex = 0
        count = ffi.new("uint32_t*")
        fn(dev, info, count, ffi.NULL)
        stats = ffi.new("VkPipelineExecutableStatisticKHR[]", count[0])
        for i in range(count[0]):
            stats[i].sType = vk.VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR
        fn(dev, info, count, stats)
        out = {}
        for i in range(count[0]):
            st = stats[i]
            fmt = st.format
            value = (st.value.b32 if fmt == 0 else st.value.i64 if fmt == 1 else
                     st.value.u64 if fmt == 2 else st.value.f64)
            out[ffi.string(st.name).decode()] = value
        return out

    def _save_cache(self) -> None:
        vk, dev = self.vk, self.device.device
        size = vk.ffi.new("size_t*")
        if vk.lib.vkGetPipelineCacheData(dev, self._cache, size, vk.ffi.NULL) != vk.VK_SUCCESS or not size[0]:
            return
        data = vk.ffi.new("char[]", size[0])
        if vk.lib.vkGetPipelineCacheData(dev, self._cache, size, data) != vk.VK_SUCCESS:
            return
        try:
            os.makedirs(os.path.dirname(self._cache_file), exist_ok=True)
            tmp = self._cache_file + f".{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(vk.ffi.buffer(data, size[0]))
            os.replace(tmp, self._cache_file)
        except OSError:
            pass  # a cache we cannot write only costs compile time next start

    def _make_commands(self) -> None:
        vk, dev = self.vk, self.device.device
        sizes = [vk.VkDescriptorPoolSize(type=vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount=BINDINGS)]
        dpci = vk.VkDescriptorPoolCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, maxSets=1, poolSizeCount=1, pPoolSizes=sizes
        )
        self._dpool = vk.vkCreateDescriptorPool(dev, dpci, None)
        dsai = vk.VkDescriptorSetAllocateInfo(
            sType=vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO, descriptorPool=self._dpool,
            descriptorSetCount=1, pSetLayouts=[self._set_layout],
        )
        self._set = vk.vkAllocateDescriptorSets(dev, dsai)[0]
        cpci = vk.VkCommandPoolCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
            flags=vk.VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
            queueFamilyIndex=self.device.compute_family,
        )
        self._cpool = vk.vkCreateCommandPool(dev, cpci, None)
        cbai = vk.VkCommandBufferAllocateInfo(
            sType=vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, commandPool=self._cpool,
            level=vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY, commandBufferCount=1,
        )
        self._cmd = vk.vkAllocateCommandBuffers(dev, cbai)[0]
        self._queries = None
        if self.device.timestamps:
            qpci = vk.VkQueryPoolCreateInfo(
                sType=vk.VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO, queryType=vk.VK_QUERY_TYPE_TIMESTAMP, queryCount=2
            )
            self._queries = vk.vkCreateQueryPool(dev, qpci, None)
        self._make_sync()
        self._push = vk.ffi.new("uint32_t[4]")
        self._nv_cmd = None
        self._recorded = None
        self._submit_info = None
        self._staged = None
        self._ts = vk.ffi.new("uint64_t[2]")
        self._status_words: memoryview | None = None  # the status buffer as uint32 words
        self._status_clean = True  # no status word is set (the status buffer is as zeroed)

    def _make_sync(self) -> None:
        """The batch-end signal (timeline semaphore, else fence) and who waits for it (C or Python)."""
        vk, dev = self.vk, self.device.device
        sync = os.environ.get(ENV_SYNC, "auto")
        if sync not in ("auto", "timeline", "fence"):
            raise GpuUnavailable(f"{ENV_SYNC}={sync!r}: expected timeline, fence or auto")
        if sync == "timeline" and not self.device.timeline:
            raise GpuUnavailable(f"{ENV_SYNC}=timeline but the device has no timeline semaphores")
        self._timeline = self.device.timeline and sync != "fence"
        self._fence = self._semaphore = None
        self._sync_value = 0
        if self._timeline:
            tci = vk.VkSemaphoreTypeCreateInfo(
                sType=vk.VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO, semaphoreType=vk.VK_SEMAPHORE_TYPE_TIMELINE,
                initialValue=0,
            )
            sci = vk.VkSemaphoreCreateInfo(sType=vk.VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, pNext=tci)
            self._semaphore = vk.vkCreateSemaphore(dev, sci, None)
        else:
            self._fence = vk.vkCreateFence(dev, vk.VkFenceCreateInfo(sType=vk.VK_STRUCTURE_TYPE_FENCE_CREATE_INFO), None)
        submit = os.environ.get(ENV_SUBMIT, "auto")
        if submit not in ("auto", "native", "python"):
            raise GpuUnavailable(f"{ENV_SUBMIT}={submit!r}: expected native, python or auto")
        self._submitter = None
        if submit != "python":
            self._submitter = self._native_submitter()
            if self._submitter is None and submit == "native":
                raise GpuUnavailable(f"{ENV_SUBMIT}=native but dsd._native has no VkSubmitter (run make build)")
        self.completion = ("timeline semaphore" if self._timeline else "fence") + (
            ", native submit" if self._submitter is not None else ", python submit")

    def _native_submitter(self):
        """dsd._native.VkSubmitter over this decoder's queue, command buffer and sync object, or
        None when the extension lacks it (the Python path below does the same, slower)."""
        try:
            from dsd._native import VkSubmitter
        except ImportError:
            return None
        vk, dev = self.vk, self.device.device
        ffi = vk.ffi

        def ptr(h) -> int:
            return int(ffi.cast("uintptr_t", h)) if h is not None else 0

        names = ("vkQueueSubmit", "vkGetSemaphoreCounterValue", "vkWaitSemaphores", "vkGetFenceStatus",
                 "vkWaitForFences", "vkResetFences", "vkGetQueryPoolResults")
        procs = tuple(ptr(vk.lib.vkGetDeviceProcAddr(dev, n.encode())) for n in names)
        sync = self._semaphore if self._timeline else self._fence
        return VkSubmitter(procs, ptr(dev), ptr(self.device.compute_queue), ptr(self._cmd), ptr(sync),
                           self._timeline, ptr(self._queries))

    # -- buffer pool --------------------------------------------------------------------------
    def _pool(self, role: str, size: int) -> Buffer:
        """The pool's buffer for `role`, grown (to a power of two) when `size` does not fit."""
        buf = self._buffers.get(role)
        if buf is not None and buf.size >= size:
            return buf
        vk = self.vk
        new_size = 1 << max(16, (max(size, 1) - 1).bit_length())
        usage = vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT
        host = role in ("in_stage", "out_stage", "streams", "control", "status")
        # The stream records and the tile counter are small and touched by every tile: in device
        # memory the host can map (BAR) where there is some, so the shader's lookups and atomics
        # stay on the GPU instead of crossing PCIe. The host only writes those. The failed-tile
        # count and the status words, which the host reads after every batch, live in cached host
        # memory: the GPU writes them only when a tile fails, and a host read of mapped device
        # memory can cost microseconds (5 us for 4 bytes on the H200 machine, docs/gpu.md).
        near = role in ("streams", "control")
        if buf is not None:
            if role == "status":
                self._status_words.release()
            self.device.destroy_buffer(buf)
            del self._buffers[role]
        buf = self.device.create_buffer(new_size, usage, host_visible=host, device_local=not host or near,
                                        readback=role in ("out_stage", "status"))
        self._buffers[role] = buf
        if role == "status":
            buf.mapping[:] = bytes(new_size)  # the shader only ever sets words; they start at zero
            self._status_words = buf.mapping.cast("I")
            self._status_clean = True
        self._bound = None
        return buf

    # -- batches ------------------------------------------------------------------------------
    def decode_batch(self, items: Sequence[Item]) -> list[bytes | GpuDecodeError]:
        """Decodes each (compressed, uncompressed_size) pair; returns bytes or the request's error."""
        out: list[bytes | GpuDecodeError] = []

        def sink(i: int, mv: memoryview | None, err: GpuDecodeError | None) -> None:
            out.append(err if err is not None else bytes(mv) if mv is not None else b"")

        self._run(items, sink=sink)
        return out

    def decode_batch_into(self, items: Sequence[Item], outputs: Sequence[memoryview | bytearray], *,
                          source: tuple[Buffer, Sequence[int]] | None = None) -> list[GpuDecodeError | None]:
        """Decodes into caller-provided writable buffers (e.g. a client's shared memory region),
        one per item, each at least the item's decoded size; returns None or the error per item.
        With `source` = (a buffer from VulkanDevice.import_host, each item's offset in it), the
        items' bytes already lie in GPU-visible host memory: the GPU copies them from there, with
        no CPU copy into the staging buffer."""
        if len(outputs) != len(items):
            raise ValueError("decode_batch_into needs one output buffer per item")
        res: list[GpuDecodeError | None] = []
        self._run(items, sink=_copy_sink(outputs, res, len(items)), source=source)
        return res

    def decode_batch_device(self, items: Sequence[Item], *, exportable: bool = False) -> DeviceBatch:
        """Decodes into a new device-local buffer that the caller owns (release() it), for GPU
        destinations; with exportable=True its memory can be exported as an fd."""
        results: list[GpuDecodeError | None] = []

        def sink(i: int, mv: memoryview | None, err: GpuDecodeError | None) -> None:
            results.append(err)

        buffer, offsets, plans = self._run(items, sink=sink, device_out=True, exportable=exportable)
        sizes = [p.out_len if isinstance(p, StreamPlan) else 0 for p in plans]
        return DeviceBatch(buffer, offsets, sizes, results, self)

    def decode_batch_nv(self, items: Sequence[Item], *, resident: bool = False) -> list[GpuDecodeError | None]:
        """Decodes with the driver's VK_NV_memory_decompression into the pool's device buffer
        (benchmarks and cross-checks; read back with read_pool_output). The extension reports
        no per-tile errors, so only the host-side container and tile-table checks apply: the
        shader stays the path for data that is not trusted."""
        if not self.device.nv_decompression:
            raise GpuUnavailable("device lacks VK_NV_memory_decompression")
        res: list[GpuDecodeError | None] = []
        self._run(items, sink=lambda i, mv, err: res.append(err), device_out=False, resident=resident,
                  method="nv", readback=False)
        return res

    def decode_batch_pool(self, items: Sequence[Item]) -> list[GpuDecodeError | None]:
        """Decodes into the decoder's reusable device buffer (valid until the next batch; stream
        i starts at the 256-byte aligned offset `pool_offsets(items)[i]`): a GPU destination
        with no allocation per batch."""
        res: list[GpuDecodeError | None] = []
        self._run(items, sink=lambda i, mv, err: res.append(err), readback=False)
        return res

    def reserve_staging(self, compressed_sizes: Sequence[int]) -> list[memoryview]:
        """Writable views into the staging buffer, one per request (4-byte aligned), so the io
        engine can read compressed data straight into GPU-visible memory: the bytes then move
        once on the CPU. Fill them, then call decode_staged(); one staged batch at a time."""
        offsets, pos = [], 0
        for n in compressed_sizes:
            offsets.append(pos)
            pos = _align(pos + int(n), 4)
        with self._lock:
            buf = self._pool("in_stage", max(pos, 4))
            self._staged = (offsets, [int(n) for n in compressed_sizes])
            return [buf.mapping[o: o + n] for o, n in zip(offsets, self._staged[1])]

    def decode_staged(self, sizes: Sequence[int | None], *, outputs: Sequence | None = None) -> list[GpuDecodeError | None]:
        """Decodes the requests filled through reserve_staging(); `sizes` are their decoded sizes
        (or None). Output goes to the pool's device buffer, or into `outputs` (host buffers)."""
        if self._staged is None or len(self._staged[0]) != len(sizes):
            raise GpuError("decode_staged needs a reserve_staging() of the same number of requests first")
        offsets, lengths = self._staged
        self._staged = None
        stage = self._buffers["in_stage"].mapping
        items = [(stage[o: o + n], s) for o, n, s in zip(offsets, lengths, sizes)]
        res: list[GpuDecodeError | None] = []
        if outputs is None:
            self._run(items, sink=lambda i, mv, err: res.append(err), readback=False, staged=offsets)
            return res

        if len(outputs) != len(items):
            raise ValueError("decode_staged needs one output buffer per request")
        self._run(items, sink=_copy_sink(outputs, res, len(items)), staged=offsets)
        return res

    def decode_batch_resident(self, items: Sequence[Item]) -> None:
        """Decodes the batch that the previous call uploaded again, without copying the input
        and without reading back: the decode-only figure of `dsd bench gpu`."""
        self._run(items, sink=lambda i, mv, err: None, resident=True, readback=False)

    def read_pool_output(self, offset: int, size: int) -> bytes:
        return self._read_device(self._buffers["out_dev"], offset, size)

    def _run(self, items: Sequence[Item], *, sink, device_out: bool = False, exportable: bool = False,
             resident: bool = False, method: str = "shader", readback: bool = True,
             staged: Sequence[int] | None = None, source: tuple[Buffer, Sequence[int]] | None = None) -> tuple:
        """Plans, submits and reports one batch: sink(i, view or None, error or None) per item.
        Returns (the device_out buffer or None, output offsets, plans). This is the per-batch
        path (dispatch overhead, docs/gpu.md): one pass over the items, no per-batch objects
        beyond the lists returned."""
        if self.closed:
            raise GpuError("decoder is closed")
        t0 = time.perf_counter()
        views: list[memoryview] = []
        plans: list[StreamPlan | GpuDecodeError] = []
        out_offs: list[int] = []
        records: list[tuple] = []
        copies: list[tuple[int, int, int]] = []  # (source offset, input offset, bytes) with `source`
        # Layout: inputs 4-byte aligned, outputs 256-byte aligned, tiles numbered across the batch.
        in_pos = out_pos = tiles = 0
        for i, (data, size) in enumerate(items):
            mv = memoryview(data)
            if mv.format != "B" or mv.ndim != 1 or not mv.c_contiguous:  # cast raises for non-contiguous
                mv = mv.cast("B")
            views.append(mv)
            out_offs.append(out_pos)
            try:
                plan = plan_stream(mv, size)
            except GpuDecodeError as exc:
                plans.append(exc)
                continue
            plans.append(plan)
            if plan.num_tiles:
                at = staged[i] if staged is not None else in_pos  # staged: the data is already there
                records.append((i, at, len(mv), out_pos, plan, tiles))
                if source is not None:  # the GPU copies it from the imported host memory to `at`
                    copies.append((source[1][i], at, len(mv)))
                tiles += plan.num_tiles
                end = (at + len(mv) + 3) & ~3
                if end > in_pos:
                    in_pos = end
                out_pos = (out_pos + plan.out_len + 255) & ~255
        if out_pos >= 1 << 32 or in_pos >= 1 << 32:
            raise GpuError("batch larger than 4 GiB: split it")
        if method == "nv":
            records = self._check_tiles_on_host(views, records, plans)
        with self._lock:
            statuses, out_host, dispatch, submit, device_buffer = self._submit(
                views, records, in_pos, out_pos, tiles, device_out, exportable, resident, method, readback,
                staged is not None, (source[0], tuple(copies)) if source is not None else None)
            errors = decoded = 0
            for i, plan in enumerate(plans):
                if plan.__class__ is not StreamPlan:
                    sink(i, None, plan)
                    errors += 1
                    continue
                decoded += plan.out_len
                st = statuses.get(i, 0) if statuses else 0
                if st:
                    sink(i, None, GpuDecodeError(st & 0xFFFF, st >> 16))
                    errors += 1
                elif out_host is None or not plan.out_len:
                    sink(i, None, None)
                else:
                    o = out_offs[i]
                    sink(i, out_host.mapping[o: o + plan.out_len], None)
            self._batches += 1
            self._streams += len(plans)
            self._decoded += decoded
            self._errors += errors
            # The dataclass is built when asked for (statistics()): off the per-batch path.
            self._last_raw = (len(plans), tiles, in_pos, decoded, dispatch, submit, time.perf_counter() - t0)
        return device_buffer, out_offs, plans

    def _check_tiles_on_host(self, views, records, plans) -> list:
        """For the NV path, which trusts its regions: every tile inside its stream, in order."""
        kept = []
        for rec in records:
            idx, _in_off, ln, _out_off, plan, _base = rec
            n = plan.num_tiles
            table = struct.unpack_from(f"<{n}I", views[idx], 8)
            data = 8 + 4 * n
            offs = [0] + list(table[1:]) + [(table[-1] if n > 1 else 0) + table[0]]
            if any(b < a for a, b in zip(offs, offs[1:])) or data + offs[-1] > ln:
                plans[idx] = GpuDecodeError(2)
                continue
            kept.append(rec + (offs,))
        return kept

    def _submit(self, views, records, in_size, out_size, tiles, device_out, exportable, resident,
                method="shader", readback=True, staged=False, source=None) -> tuple:
        """Uploads, records (or reuses the recording), submits and waits. Returns (statuses:
        {item: status word} or None when no tile failed, the host buffer holding the output or
        None, GPU seconds or None, submit-to-end seconds, the device_out buffer or None)."""
        if tiles == 0:
            return None, None, None, 0.0, None
        vk = self.vk
        pool = self._pool
        n = len(records)
        if source is not None:  # the input is in imported host memory: copied region by region
            ins, copies = source
            in_dev = pool("in_dev", in_size)
        else:
            ins = self._buffers["in_stage"] if resident else pool("in_stage", in_size)
            in_dev = ins if ins.device_local else pool("in_dev", in_size)
            copies = None
        device_buffer = None
        if device_out:
            out_dev = device_buffer = self.device.create_buffer(
                out_size,
                vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                host_visible=False, device_local=True, exportable=exportable,
            )
        else:
            out_dev = pool("out_dev", out_size)
        out_host = None
        if not device_out and readback:
            out_host = out_dev if out_dev.host_visible else pool("out_stage", out_size)
        order = self._order_tiles(views, records, tiles) if method == "shader" else None
        sbuf = pool("streams", n * STREAM_RECORD.size + (4 * tiles if order is not None else 0))
        ctl = pool("control", 16)
        clock = self.device.tile_clock
        sts = pool("status", 4 + 4 * n + (16 * tiles if clock else 0))

        if not resident and not staged and source is None:
            m = ins.mapping
            for rec in records:
                m[rec[1]: rec[1] + rec[2]] = views[rec[0]]
        # The tile counter starts at zero: written through the mapping (a queue submit makes host
        # writes visible) instead of a fill command. The host never reads this buffer back.
        ctl.mapping[:4] = _ZERO4
        if not self._status_clean:  # a batch that failed midway may have left status words set
            sm = sts.mapping
            sm[:] = bytes(len(sm))
            self._status_clean = True
        sm = sbuf.mapping
        pack = STREAM_RECORD.pack_into
        for k, rec in enumerate(records):
            plan = rec[4]
            pack(sm, k << 5, rec[1], rec[2], rec[3], plan.out_len, plan.num_tiles, rec[5], plan.last_size, 0)
        if order is not None:
            sm[n << 5: (n << 5) + 4 * tiles] = memoryview(order).cast("B")

        bound = (in_dev.handle, out_dev.handle, sbuf.handle, ctl.handle, sts.handle)
        if self._bound != bound:
            self._bind(bound)
        cmd = self._cmd
        # A batch with the same shape as the last one resubmits the recorded command buffer.
        key = (bound, in_size, out_size, tiles, n, method, device_out, resident, out_host is not None,
               order is not None, copies)
        if method != "shader" or key != self._recorded:
            self._record(cmd, key, ins, in_dev, out_dev, out_host, records, in_size, out_size, tiles, n, method,
                         resident, device_out, order is not None, copies)
        result: dict = {"dispatch": None, "submit": 0.0}
        self._status_clean = False
        self._submit_and_wait(cmd, spin=tiles <= SPIN_MAX_TILES, result=result)
        dispatch = result["dispatch"]
        if dispatch is None and self._queries is not None:
            dev = self.device.device
            vk.lib.vkGetQueryPoolResults(dev, self._queries, 0, 2, 16, self._ts, 8,
                                         vk.VK_QUERY_RESULT_64_BIT | vk.VK_QUERY_RESULT_WAIT_BIT)
            dispatch = (self._ts[1] - self._ts[0]) * self.device.timestamp_period * 1e-9
        if clock:
            self.last_tile_clock = bytes(sts.mapping[4 + 4 * n: 4 + 4 * n + 16 * tiles])
        statuses = None
        # sts[0] counts failed tiles (a read of cached host memory); the status words are read,
        # and zeroed again for the next batch, only when it is not zero.
        words = self._status_words
        if words[0]:
            statuses = {}
            for k, rec in enumerate(records):
                if words[1 + k]:
                    statuses[rec[0]] = words[1 + k]
            cn = 4 + 4 * n
            sts.mapping[:cn] = bytes(cn)
        self._status_clean = True
        return statuses, out_host, dispatch, result["submit"], device_buffer

    def _order_tiles(self, views, records, tiles: int):
        """The batch's tiles in hand-out order (uint32 words), or None for batch order."""
        if self.tile_order_fn is not None:  # any mode: tests check the shader's remapping with it
            return array.array("I", self.tile_order_fn(views, records, tiles))
        if not self.persistent or self.tile_order == "off" or tiles < ORDER_MIN_TILES:
            return None
        return _tile_order([(views[rec[0]], rec[4].num_tiles, rec[4].last_size) for rec in records])

    def _bind(self, bound: tuple) -> None:
        vk = self.vk
        infos = [vk.VkDescriptorBufferInfo(buffer=b, offset=0, range=0xFFFFFFFFFFFFFFFF) for b in bound]
        writes = [
            vk.VkWriteDescriptorSet(
                sType=vk.VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, dstSet=self._set, dstBinding=i, descriptorCount=1,
                descriptorType=vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, pBufferInfo=[infos[i]],
            )
            for i in range(BINDINGS)
        ]
        vk.vkUpdateDescriptorSets(self.device.device, BINDINGS, writes, 0, None)
        self._bound = bound

    def _record(self, cmd, key, ins, in_dev, out_dev, out_host, records, in_size, out_size, tiles, n, method,
                resident, device_out, ordered=False, copies=None) -> None:
        vk = self.vk
        self._recorded = None
        vk.vkResetCommandBuffer(cmd, 0)
        begin = vk.VkCommandBufferBeginInfo(sType=vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, flags=0)
        vk.vkBeginCommandBuffer(cmd, begin)
        if copies is not None:
            regions = [vk.VkBufferCopy(srcOffset=s, dstOffset=d, size=size) for s, d, size in copies]
            vk.vkCmdCopyBuffer(cmd, ins.handle, in_dev.handle, len(regions), regions)
        elif in_dev is not ins and not resident:
            region = vk.VkBufferCopy(srcOffset=0, dstOffset=0, size=in_size)
            vk.vkCmdCopyBuffer(cmd, ins.handle, in_dev.handle, 1, [region])
        to_compute = vk.VkMemoryBarrier(
            sType=vk.VK_STRUCTURE_TYPE_MEMORY_BARRIER, srcAccessMask=vk.VK_ACCESS_TRANSFER_WRITE_BIT | vk.VK_ACCESS_HOST_WRITE_BIT,
            dstAccessMask=vk.VK_ACCESS_SHADER_READ_BIT | vk.VK_ACCESS_SHADER_WRITE_BIT,
        )
        # ALL_COMMANDS rather than COMPUTE_SHADER: the NV path's decompression is its own stage.
        vk.vkCmdPipelineBarrier(cmd, vk.VK_PIPELINE_STAGE_TRANSFER_BIT | vk.VK_PIPELINE_STAGE_HOST_BIT,
                                vk.VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, [to_compute], 0, None, 0, None)
        if self._queries is not None:
            vk.vkCmdResetQueryPool(cmd, self._queries, 0, 2)
            vk.vkCmdWriteTimestamp(cmd, vk.VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, self._queries, 0)
        if method == "nv":
            self._record_nv(cmd, records, in_dev, out_dev, tiles)
        else:
            self._record_shader(cmd, tiles, n, ordered)
        if self._queries is not None:
            vk.vkCmdWriteTimestamp(cmd, vk.VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, self._queries, 1)
        after = vk.VkMemoryBarrier(
            sType=vk.VK_STRUCTURE_TYPE_MEMORY_BARRIER, srcAccessMask=vk.VK_ACCESS_SHADER_WRITE_BIT | vk.VK_ACCESS_MEMORY_WRITE_BIT,
            dstAccessMask=vk.VK_ACCESS_TRANSFER_READ_BIT | vk.VK_ACCESS_HOST_READ_BIT,
        )
        vk.vkCmdPipelineBarrier(cmd, vk.VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                                vk.VK_PIPELINE_STAGE_TRANSFER_BIT | vk.VK_PIPELINE_STAGE_HOST_BIT, 0, 1, [after], 0, None, 0, None)
        if out_host is not None and out_host is not out_dev:
            region = vk.VkBufferCopy(srcOffset=0, dstOffset=0, size=out_size)
            vk.vkCmdCopyBuffer(cmd, out_dev.handle, out_host.handle, 1, [region])
            to_host = vk.VkMemoryBarrier(
                sType=vk.VK_STRUCTURE_TYPE_MEMORY_BARRIER, srcAccessMask=vk.VK_ACCESS_TRANSFER_WRITE_BIT,
                dstAccessMask=vk.VK_ACCESS_HOST_READ_BIT,
            )
            vk.vkCmdPipelineBarrier(cmd, vk.VK_PIPELINE_STAGE_TRANSFER_BIT, vk.VK_PIPELINE_STAGE_HOST_BIT, 0, 1, [to_host],
                                    0, None, 0, None)
        vk.vkEndCommandBuffer(cmd)
        self._recorded = key if not device_out else None

    def _record_shader(self, cmd, tiles: int, n: int, ordered: bool = False) -> None:
        vk = self.vk
        vk.vkCmdBindPipeline(cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, self._pipeline)
        vk.vkCmdBindDescriptorSets(cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, self._layout, 0, 1, [self._set], 0, None)
        self._push[0] = tiles
        self._push[1] = n
        self._push[2] = self.step_budget
        need = -(-tiles // self.tiles_per_group)
        if self.persistent:
            gx, gy = min(need, self.max_groups()), 1
        else:
            gx = min(need, 65535)
            gy = -(-need // gx)
        self._push[3] = (1 if self.persistent else 0) | (2 if ordered else 0)  # PERSISTENT | TILE_ORDER
        vk.vkCmdPushConstants(cmd, self._layout, vk.VK_SHADER_STAGE_COMPUTE_BIT, 0, 16, self._push)
        vk.vkCmdDispatch(cmd, gx, gy, 1)

    def _record_nv(self, cmd, records, in_dev: Buffer, out_dev: Buffer, tiles: int) -> None:
        vk = self.vk
        if self._nv_cmd is None:
            self._nv_cmd = vk.vkGetDeviceProcAddr(self.device.device, "vkCmdDecompressMemoryNV")
        regions = vk.ffi.new("VkDecompressMemoryRegionNV[]", max(tiles, 1))
        k = 0
        method = vk.VK_MEMORY_DECOMPRESSION_METHOD_GDEFLATE_1_0_BIT_NV
        for _idx, in_off, _ln, out_off, plan, _base, offs in records:
            data = in_dev.address + in_off + 8 + 4 * plan.num_tiles
            for t in range(plan.num_tiles):
                r = regions[k]
                r.srcAddress = data + offs[t]
                r.dstAddress = out_dev.address + out_off + t * TILE_BYTES
                r.compressedSize = offs[t + 1] - offs[t]
                r.decompressedSize = TILE_BYTES if t + 1 < plan.num_tiles else plan.last_size
                r.decompressionMethod = method
                k += 1
        self._nv_cmd(cmd, k, regions)

    def _submit_and_wait(self, cmd, spin: bool = False, result: dict | None = None) -> None:
        """Submits `cmd` (always self._cmd) and waits for it; with `result`, sets its "submit"
        (seconds from submit to seen complete) and, when the native submitter read the
        timestamps, its "dispatch" (GPU seconds)."""
        self._sync_value += 1
        spin_ns = SPIN_NS if spin else 0
        if self._submitter is not None:
            want_ts = result is not None and self._queries is not None
            code, t0, t1, _spun, elapsed = self._submitter.run(self._sync_value, spin_ns, WAIT_TIMEOUT_NS, want_ts)
            if code != 0:
                self._sync_failed(code)
            if result is not None:
                result["submit"] = elapsed * 1e-9
                if want_ts:
                    result["dispatch"] = (t1 - t0) * self.device.timestamp_period * 1e-9
            return
        if result is not None:
            t = time.perf_counter()
            self._submit_and_wait_python(spin, spin_ns)
            result["submit"] = time.perf_counter() - t
        else:
            self._submit_and_wait_python(spin, spin_ns)

    def _submit_and_wait_python(self, spin: bool, spin_ns: int) -> None:
        cmd = self._cmd
        vk, dev = self.vk, self.device.device
        if self._submit_info is None:  # built once: the command buffer never changes
            self._value_box = vk.ffi.new("uint64_t[1]")
            tl = None
            if self._timeline:
                tl = vk.VkTimelineSemaphoreSubmitInfo(
                    sType=vk.VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO, signalSemaphoreValueCount=1,
                    pSignalSemaphoreValues=self._value_box,
                )
            self._submit_keep = tl
            self._submit_info = [vk.VkSubmitInfo(
                sType=vk.VK_STRUCTURE_TYPE_SUBMIT_INFO, pNext=tl, commandBufferCount=1, pCommandBuffers=[cmd],
                signalSemaphoreCount=1 if self._timeline else 0,
                pSignalSemaphores=[self._semaphore] if self._timeline else None,
            )]
        self._value_box[0] = self._sync_value
        vk.vkQueueSubmit(self.device.compute_queue, 1, self._submit_info, self._fence if self._fence is not None else vk.VK_NULL_HANDLE)
        if self._timeline:
            self._wait_timeline(spin_ns)
            return
        if spin:
            # Small batches finish in tens of µs: polling beats the wake-up of a blocking wait.
            deadline = time.perf_counter() + SPIN_SECONDS
            status = vk.lib.vkGetFenceStatus(dev, self._fence)
            while status == vk.VK_NOT_READY and time.perf_counter() < deadline:
                status = vk.lib.vkGetFenceStatus(dev, self._fence)
            if status == vk.VK_SUCCESS:
                vk.vkResetFences(dev, 1, [self._fence])
                return
        try:
            vk.vkWaitForFences(dev, 1, [self._fence], vk.VK_TRUE, WAIT_TIMEOUT_NS)
        except vk.VkTimeout as exc:
            raise GpuError("GPU decode did not finish within its time limit") from exc
        finally:
            vk.vkResetFences(dev, 1, [self._fence])

    def _wait_timeline(self, spin_ns: int) -> None:
        vk, dev = self.vk, self.device.device
        got = vk.ffi.new("uint64_t*")
        deadline = time.perf_counter() + spin_ns * 1e-9
        while True:
            vk.lib.vkGetSemaphoreCounterValue(dev, self._semaphore, got)
            if got[0] >= self._sync_value:
                return
            if time.perf_counter() >= deadline:
                break
        wait = vk.VkSemaphoreWaitInfo(sType=vk.VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO, semaphoreCount=1,
                                      pSemaphores=[self._semaphore], pValues=[self._sync_value])
        try:
            vk.vkWaitSemaphores(dev, wait, WAIT_TIMEOUT_NS)
        except vk.VkTimeout as exc:
            raise GpuError("GPU decode did not finish within its time limit") from exc

    def _sync_failed(self, code: int) -> None:
        if self._fence is not None:
            self.vk.vkResetFences(self.device.device, 1, [self._fence])
        if code == self.vk.VK_TIMEOUT:
            raise GpuError("GPU decode did not finish within its time limit")
        raise GpuError(f"GPU submit or wait failed: VkResult {code}")

    def max_groups(self) -> int:
        # Persistent groups pull tiles from the counter; enough to fill any current GPU.
        if self.device.info.kind == "cpu":
            return max(4 * (os.cpu_count() or 1), 8)
        return 4096

    def _read_device(self, buf: Buffer, offset: int, size: int) -> bytes:
        vk = self.vk
        if size == 0:
            return b""
        with self._lock:
            stage = self._pool("out_stage", size)
            cmd = self._cmd
            self._recorded = None
            vk.vkResetCommandBuffer(cmd, 0)
            begin = vk.VkCommandBufferBeginInfo(
                sType=vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, flags=vk.VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT
            )
            vk.vkBeginCommandBuffer(cmd, begin)
            region = vk.VkBufferCopy(srcOffset=offset, dstOffset=0, size=size)
            vk.vkCmdCopyBuffer(cmd, buf.handle, stage.handle, 1, [region])
            vk.vkEndCommandBuffer(cmd)
            self._submit_and_wait(cmd)
            return bytes(stage.mapping[:size])

    # -- state --------------------------------------------------------------------------------
    def statistics(self) -> DecoderStatistics:
        return DecoderStatistics(self._batches, self._streams, self._decoded, self._errors, self.shader,
                                 self.device.info.name,
                                 BatchStatistics(*self._last_raw) if self._last_raw is not None else None)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        vk = self.vk
        dev = getattr(self.device, "device", None)
        if dev is not None:
            vk.vkDeviceWaitIdle(dev)
            if getattr(self, "_status_words", None) is not None:
                self._status_words.release()
                self._status_words = None
            for buf in self._buffers.values():
                self.device.destroy_buffer(buf)
            self._buffers.clear()
            for attr, fn in (("_queries", vk.vkDestroyQueryPool), ("_fence", vk.vkDestroyFence),
                             ("_semaphore", vk.vkDestroySemaphore),
                             ("_cpool", vk.vkDestroyCommandPool), ("_dpool", vk.vkDestroyDescriptorPool),
                             ("_pipeline", vk.vkDestroyPipeline), ("_cache", vk.vkDestroyPipelineCache),
                             ("_layout", vk.vkDestroyPipelineLayout), ("_set_layout", vk.vkDestroyDescriptorSetLayout),
                             ("_module", vk.vkDestroyShaderModule)):
                h = getattr(self, attr, None)
                if h is not None:
                    fn(dev, h, None)
                    setattr(self, attr, None)
        if self._own_device:
            self.device.close()

    def __enter__(self) -> "GpuDecoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

