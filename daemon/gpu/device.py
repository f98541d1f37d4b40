"""The Vulkan instance, physical-device choice, logical device, queues and memory.

Device choice: `DSD_VULKAN_DEVICE` (an index into the enumeration, or a case-insensitive part of
the device name); by default the first discrete GPU, else an integrated one, else a virtual
one, else a CPU driver (lavapipe). `DSD_VULKAN_VALIDATION=1` enables the Khronos validation
layer and collects its messages in `VulkanDevice.validation_messages`.

The `vulkan` package is cffi underneath: every nested struct handed to a call is kept alive in
a local variable until the call returns (inline temporaries can be freed too early).
"""

from __future__ import annotations

import os
from typing import Any
import threading
from dataclasses import dataclass, field

from .errors import GpuUnavailable

ENV_DEVICE = "DSD_VULKAN_DEVICE"
ENV_VALIDATION = "DSD_VULKAN_VALIDATION"
ENV_PIPELINE_STATS = "DSD_GPU_PIPELINE_STATS"
ENV_HOST_IMPORT = "DSD_GPU_HOST_IMPORT"  # 0 turns off importing the GPU route's host memory
VALIDATION_LAYER = "VK_LAYER_KHRONOS_validation"
WHOLE_SIZE = 0xFFFFFFFFFFFFFFFF

_TYPE_NAMES = {0: "other", 1: "integrated", 2: "discrete", 3: "virtual", 4: "cpu"}
_TYPE_RANK = {2: 0, 1: 1, 3: 2, 4: 3, 0: 4}


def _vk():
    try:
        import vulkan as vk
    except (ImportError, OSError) as exc:  # OSError: no libvulkan.so.1 on this machine
        raise GpuUnavailable(f"Vulkan loader not usable: {exc}") from exc
    return vk


@dataclass(frozen=True)
class DeviceInfo:
    """What `dsd doctor` and STATS show about the chosen device."""

    index: int
    name: str
    kind: str
    vendor_id: int
    api_version: str
    driver_version: int
    subgroup_size: int
    subgroup_size_range: tuple[int, int]
    compute_family: int
    transfer_family: int | None
    nv_memory_decompression: bool
    external_memory_fd: bool
    vulkan_memory_model: bool
    timeline_semaphore: bool
    validation: bool
    reason: str
    candidates: tuple[str, ...] = field(default=())


@dataclass
class Buffer:
    """One VkBuffer with its own memory; `mapping` is a writable memoryview when host-visible."""

    handle: object
    memory: object
    size: int
    host_visible: bool
    device_local: bool
    mapping: memoryview | None
    address: int = 0
    memory_type: int = -1        # what an importer of an exported fd must allocate with
    allocation_size: int = 0


class VulkanDevice:
    """Owns the instance, the device, a compute queue and (where one exists) a transfer queue."""

    def __init__(self, *, device: str | None = None, validation: bool | None = None) -> None:
        vk = _vk()
        self.vk = vk
        self.validation_messages: list[str] = []
        self._lock = threading.Lock()
        self._messenger = None
        self._callback = None
        if validation is None:
            validation = os.environ.get(ENV_VALIDATION, "") not in ("", "0")
        if device is None:
            device = os.environ.get(ENV_DEVICE) or None

        layers: list[str] = []
        extensions: list[str] = []
        if validation:
            have = {p.layerName for p in vk.vkEnumerateInstanceLayerProperties()}
            if VALIDATION_LAYER not in have:
                raise GpuUnavailable(f"{ENV_VALIDATION}=1 but {VALIDATION_LAYER} is not installed")
            layers.append(VALIDATION_LAYER)
            extensions.append("VK_EXT_debug_utils")
        app = vk.VkApplicationInfo(
            sType=vk.VK_STRUCTURE_TYPE_APPLICATION_INFO,
            pApplicationName="dsd",
            applicationVersion=1,
            pEngineName="dsd",
            engineVersion=1,
            apiVersion=vk.VK_MAKE_VERSION(1, 3, 0),
        )
        ici = vk.VkInstanceCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
            pApplicationInfo=app,
            enabledLayerCount=len(layers),
            ppEnabledLayerNames=layers or None,
            enabledExtensionCount=len(extensions),
            ppEnabledExtensionNames=extensions or None,
        )
        try:
            self.instance = vk.vkCreateInstance(ici, None)
        except Exception as exc:  # the vulkan package raises one class per VkResult
            raise GpuUnavailable(f"vkCreateInstance failed: {exc!r}") from exc
        if validation:
            self._install_messenger()
        try:
            self._pick_device(device, validation)
            self._create_device()
        except BaseException:
            self.close()
            raise

    # -- selection ----------------------------------------------------------------------------
    def _install_messenger(self) -> None:
        vk = self.vk

        def callback(severity, types, data, user):
            if severity >= vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT:
                msg = vk.ffi.string(data.pMessage).decode(errors="replace")
                self.validation_messages.append(msg)
            return 0

        self._callback = callback
        info = vk.VkDebugUtilsMessengerCreateInfoEXT(
            sType=vk.VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
            messageSeverity=vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT
            | vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
            messageType=vk.VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT
            | vk.VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT
            | vk.VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
            pfnUserCallback=callback,
        )
        create = vk.vkGetInstanceProcAddr(self.instance, "vkCreateDebugUtilsMessengerEXT")
        self._messenger = create(self.instance, info, None)

    def _pick_device(self, wanted: str | None, validation: bool) -> None:
        vk = self.vk
        physical = vk.vkEnumeratePhysicalDevices(self.instance)
        if not physical:
            raise GpuUnavailable("no Vulkan physical device")
        described = []
        for i, pd in enumerate(physical):
            p = vk.vkGetPhysicalDeviceProperties(pd)
            described.append((i, pd, p.deviceName, p.deviceType))
        names = tuple(f"{i}: {name} ({_TYPE_NAMES.get(t, t)})" for i, _pd, name, t in described)
        if wanted is not None:
            chosen = None
            if wanted.isdigit():
                idx = int(wanted)
                if idx >= len(described):
                    raise GpuUnavailable(f"{ENV_DEVICE}={wanted}: only {len(described)} devices ({'; '.join(names)})")
                chosen = described[idx]
            else:
                for d in described:
                    if wanted.lower() in d[2].lower():
                        chosen = d
                        break
                if chosen is None:
                    raise GpuUnavailable(f"{ENV_DEVICE}={wanted!r} matches no device ({'; '.join(names)})")
            reason = f"{ENV_DEVICE}={wanted}"
        else:
            chosen = min(described, key=lambda d: (_TYPE_RANK.get(d[3], 9), d[0]))
            reason = f"first {_TYPE_NAMES.get(chosen[3], 'other')} device (discrete > integrated > virtual > cpu)"
        self.index, self.physical, name, dtype = chosen
        props = vk.vkGetPhysicalDeviceProperties(self.physical)
        self.limits = props.limits
        self.timestamp_period = float(props.limits.timestampPeriod)
        self.timestamps = bool(props.limits.timestampComputeAndGraphics)
        api = props.apiVersion

        exts = {e.extensionName for e in vk.vkEnumerateDeviceExtensionProperties(self.physical, None)}
        self.extensions = exts

        sg = vk.VkPhysicalDeviceSubgroupProperties(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES)
        sgc = vk.VkPhysicalDeviceSubgroupSizeControlProperties(
            sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES, pNext=sg
        )
        p2 = vk.VkPhysicalDeviceProperties2(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, pNext=sgc)
        vk.vkGetPhysicalDeviceProperties2(self.physical, p2)
        self.subgroup_size = int(sg.subgroupSize)
        self.subgroup_ops = int(sg.supportedOperations)
        self.subgroup_range = (int(sgc.minSubgroupSize), int(sgc.maxSubgroupSize))

        f12 = vk.VkPhysicalDeviceVulkan12Features(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES)
        f13 = vk.VkPhysicalDeviceVulkan13Features(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES, pNext=f12)
        chain = f13
        nvf = None
        if "VK_NV_memory_decompression" in exts:
            nvf = vk.VkPhysicalDeviceMemoryDecompressionFeaturesNV(
                sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_DECOMPRESSION_FEATURES_NV, pNext=f13
            )
            chain = nvf
        f2 = vk.VkPhysicalDeviceFeatures2(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, pNext=chain)
        vk.vkGetPhysicalDeviceFeatures2(self.physical, f2)
        if not f2.features.shaderInt64:
            raise GpuUnavailable(f"{name}: no shaderInt64")
        if not f12.storageBuffer8BitAccess:
            raise GpuUnavailable(f"{name}: no storageBuffer8BitAccess")
        self.size_control = bool(f13.subgroupSizeControl)
        self.full_subgroups = bool(f13.computeFullSubgroups)
        self.buffer_device_address = bool(f12.bufferDeviceAddress)
        # Batch completion: a timeline semaphore (core 1.2) where the driver has it, else a fence.
        self.timeline = bool(f12.timelineSemaphore)
        # Both or neither: with the model on, Device scope (our atomics) needs the DeviceScope bit.
        self.memory_model = bool(f12.vulkanMemoryModel and f12.vulkanMemoryModelDeviceScope)
        self.nv_decompression = bool(nvf is not None and nvf.memoryDecompression and self.buffer_device_address)
        self.external_fd = "VK_KHR_external_memory_fd" in exts
        # Host memory the daemon mapped itself (the GPU route's memfd) imported as a Vulkan buffer,
        # so the GPU copies from it without a CPU copy into a staging buffer first.
        self.host_import_alignment = 0
        if "VK_EXT_external_memory_host" in exts and os.environ.get(ENV_HOST_IMPORT, "1") != "0":
            hp = vk.VkPhysicalDeviceExternalMemoryHostPropertiesEXT(
                sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT)
            p2h = vk.VkPhysicalDeviceProperties2(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, pNext=hp)
            vk.vkGetPhysicalDeviceProperties2(self.physical, p2h)
            self.host_import_alignment = int(hp.minImportedHostPointerAlignment)
        # Profiling only (DSD_GPU_PIPELINE_STATS=1): the driver's compile statistics of the
        # decode pipeline (registers, shared memory...), GpuDecoder.pipeline_statistics().
        self.pipeline_stats = ("VK_KHR_pipeline_executable_properties" in exts
                               and os.environ.get(ENV_PIPELINE_STATS, "") not in ("", "0"))
        # Profiling only (DSD_GPU_TILE_CLOCK=1, with a DSD_TILE_CLOCK build of the shader): each
        # tile's start and end on the device clock, GpuDecoder.last_tile_clock.
        self.tile_clock = ("VK_KHR_shader_clock" in exts
                           and os.environ.get("DSD_GPU_TILE_CLOCK", "") not in ("", "0"))

        fams = vk.vkGetPhysicalDeviceQueueFamilyProperties(self.physical)
        compute = [i for i, f in enumerate(fams) if f.queueFlags & vk.VK_QUEUE_COMPUTE_BIT]
        if not compute:
            raise GpuUnavailable(f"{name}: no compute queue")
        # Prefer a compute family without graphics (async compute), else any compute family.
        no_gfx = [i for i in compute if not fams[i].queueFlags & vk.VK_QUEUE_GRAPHICS_BIT]
        self.compute_family = (no_gfx or compute)[0]
        transfer = [
            i
            for i, f in enumerate(fams)
            if f.queueFlags & vk.VK_QUEUE_TRANSFER_BIT
            and not f.queueFlags & (vk.VK_QUEUE_COMPUTE_BIT | vk.VK_QUEUE_GRAPHICS_BIT)
        ]
        self.transfer_family = transfer[0] if transfer else None

        self.memory_props = vk.vkGetPhysicalDeviceMemoryProperties(self.physical)
        self.info = DeviceInfo(
            index=self.index,
            name=name,
            kind=_TYPE_NAMES.get(dtype, "other"),
            vendor_id=int(props.vendorID),
            api_version=f"{api >> 22}.{(api >> 12) & 0x3FF}.{api & 0xFFF}",
            driver_version=int(props.driverVersion),
            subgroup_size=self.subgroup_size,
            subgroup_size_range=self.subgroup_range,
            compute_family=self.compute_family,
            transfer_family=self.transfer_family,
            nv_memory_decompression=self.nv_decompression,
            external_memory_fd=self.external_fd,
            vulkan_memory_model=self.memory_model,
            timeline_semaphore=self.timeline,
            validation=validation,
            reason=reason,
            candidates=names,
        )

    def _create_device(self) -> None:
        vk = self.vk
        prio = vk.ffi.new("float[1]", [1.0])
        families = [self.compute_family] + ([self.transfer_family] if self.transfer_family is not None else [])
        qinfos = [
            vk.VkDeviceQueueCreateInfo(
                sType=vk.VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, queueFamilyIndex=f, queueCount=1, pQueuePriorities=prio
            )
            for f in families
        ]
        f12 = vk.VkPhysicalDeviceVulkan12Features(
            sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
            storageBuffer8BitAccess=vk.VK_TRUE,
            bufferDeviceAddress=vk.VK_TRUE if self.buffer_device_address else vk.VK_FALSE,
            timelineSemaphore=vk.VK_TRUE if self.timeline else vk.VK_FALSE,
            vulkanMemoryModel=vk.VK_TRUE if self.memory_model else vk.VK_FALSE,
            vulkanMemoryModelDeviceScope=vk.VK_TRUE if self.memory_model else vk.VK_FALSE,
        )
        f13 = vk.VkPhysicalDeviceVulkan13Features(
            sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
            pNext=f12,
            subgroupSizeControl=vk.VK_TRUE if self.size_control else vk.VK_FALSE,
            computeFullSubgroups=vk.VK_TRUE if self.full_subgroups else vk.VK_FALSE,
        )
        chain = f13
        exts = []
        nvf = None
        if self.nv_decompression:
            nvf = vk.VkPhysicalDeviceMemoryDecompressionFeaturesNV(
                sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_DECOMPRESSION_FEATURES_NV,
                pNext=f13,
                memoryDecompression=vk.VK_TRUE,
            )
            chain = nvf
            exts.append("VK_NV_memory_decompression")
        if self.external_fd:
            exts.append("VK_KHR_external_memory_fd")
        if self.host_import_alignment:
            exts += ["VK_KHR_external_memory", "VK_EXT_external_memory_host"]
        pef = None
        if self.pipeline_stats:
            pef = vk.VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR(
                sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR,
                pNext=chain, pipelineExecutableInfo=vk.VK_TRUE,
            )
            chain = pef
            exts.append("VK_KHR_pipeline_executable_properties")
        clk = None
        if self.tile_clock:
            clk = vk.VkPhysicalDeviceShaderClockFeaturesKHR(
                sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CLOCK_FEATURES_KHR,
                pNext=chain, shaderSubgroupClock=vk.VK_TRUE, shaderDeviceClock=vk.VK_TRUE,
            )
            chain = clk
            exts.append("VK_KHR_shader_clock")
        base = vk.VkPhysicalDeviceFeatures(shaderInt64=vk.VK_TRUE)
        f2 = vk.VkPhysicalDeviceFeatures2(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, pNext=chain, features=base)
        dci = vk.VkDeviceCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
            pNext=f2,
            queueCreateInfoCount=len(qinfos),
            pQueueCreateInfos=qinfos,
            enabledExtensionCount=len(exts),
            ppEnabledExtensionNames=exts or None,
        )
        try:
            self.device = vk.vkCreateDevice(self.physical, dci, None)
        except Exception as exc:
            raise GpuUnavailable(f"vkCreateDevice failed: {exc!r}") from exc
        del nvf, base, pef, clk
        self.compute_queue = vk.vkGetDeviceQueue(self.device, self.compute_family, 0)
        self.transfer_queue = (
            vk.vkGetDeviceQueue(self.device, self.transfer_family, 0) if self.transfer_family is not None else None
        )

    # -- memory ---------------------------------------------------------------------------------
    def _memory_type(self, bits: int, want: int, prefer: int = 0, avoid: int = 0) -> int:
        mp = self.memory_props
        best = None
        for i in range(mp.memoryTypeCount):
            flags = mp.memoryTypes[i].propertyFlags
            if not bits & (1 << i) or flags & want != want:
                continue
            score = (bin(flags & prefer).count("1"), -bin(flags & avoid).count("1"))
            if best is None or score > best[0]:
                best = (score, i)
        if best is None:
            raise GpuUnavailable(f"no memory type with flags 0x{want:x}")
        return best[1]

    def create_buffer(self, size: int, usage: int, *, host_visible: bool, device_local: bool = False,
                      readback: bool = False, exportable: bool = False) -> Buffer:
        """A buffer with dedicated memory. Host-visible buffers stay mapped for their lifetime."""
        vk = self.vk
        size = max(int(size), 16)
        if self.buffer_device_address:
            usage |= 0x00020000  # VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT (None in the vulkan package)
        ext_info = None
        if exportable:
            ext_info = vk.VkExternalMemoryBufferCreateInfo(
                sType=vk.VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
                handleTypes=vk.VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT,
            )
        bci = vk.VkBufferCreateInfo(
            sType=vk.VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
            pNext=ext_info,
            size=size,
            usage=usage,
            sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE,
        )
        handle = vk.vkCreateBuffer(self.device, bci, None)
        req = vk.vkGetBufferMemoryRequirements(self.device, handle)
        HV = vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
        HC = vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
        DL = vk.VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
        CA = vk.VK_MEMORY_PROPERTY_HOST_CACHED_BIT
        if host_visible:
            mtype = self._memory_type(req.memoryTypeBits, HV | HC, prefer=(CA if readback else 0) | (DL if device_local else 0),
                                      avoid=0 if device_local else DL)
        else:
            mtype = self._memory_type(req.memoryTypeBits, DL if device_local else 0, avoid=HV)
        flags = self.memory_props.memoryTypes[mtype].propertyFlags
        chain = None
        export = None
        if exportable:
            export = vk.VkExportMemoryAllocateInfo(
                sType=vk.VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO,
                handleTypes=vk.VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT,
            )
            chain = export
        if self.buffer_device_address:
            chain = vk.VkMemoryAllocateFlagsInfo(
                sType=vk.VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
                pNext=export,
                flags=0x2,  # VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT
            )
        mai = vk.VkMemoryAllocateInfo(
            sType=vk.VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, pNext=chain, allocationSize=req.size, memoryTypeIndex=mtype
        )
        try:
            memory = vk.vkAllocateMemory(self.device, mai, None)
        except Exception as exc:
            vk.vkDestroyBuffer(self.device, handle, None)
            raise GpuUnavailable(f"cannot allocate {size} bytes of GPU memory: {exc!r}") from exc
        vk.vkBindBufferMemory(self.device, handle, memory, 0)
        mapping = None
        if flags & HV:
            mapping = memoryview(vk.vkMapMemory(self.device, memory, 0, size, 0))
        address = 0
        if self.buffer_device_address:
            info = vk.ffi.new("VkBufferDeviceAddressInfo*")
            info.sType = vk.VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO
            info.buffer = handle
            address = int(vk.lib.vkGetBufferDeviceAddress(self.device, info))
        return Buffer(handle, memory, size, bool(flags & HV), bool(flags & DL), mapping, address, mtype, int(req.size))

    def destroy_buffer(self, buf: Buffer | None) -> None:
        if buf is None:
            return
        vk = self.vk
        if buf.mapping is not None:
            try:
                buf.mapping.release()
            except BufferError:
                pass  # a caller still holds a view (reserve_staging); unmapping ends it anyway
            vk.vkUnmapMemory(self.device, buf.memory)
        vk.vkDestroyBuffer(self.device, buf.handle, None)
        vk.vkFreeMemory(self.device, buf.memory, None)

    def export_fd(self, buf: Buffer) -> int:
        """An opaque fd for `buf`'s memory (VK_KHR_external_memory_fd) that another Vulkan
        device on this GPU can import; the caller owns the fd."""
        vk = self.vk
        if not self.external_fd:
            raise GpuUnavailable("device lacks VK_KHR_external_memory_fd")
        get_fd = vk.vkGetDeviceProcAddr(self.device, "vkGetMemoryFdKHR")
        info = vk.VkMemoryGetFdInfoKHR(
            sType=vk.VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR,
            memory=buf.memory,
            handleType=vk.VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT,
        )
        return int(get_fd(self.device, info))

    def import_host(self, memory: Any, usage: int) -> Buffer:
        """`memory` (a writable, page-aligned buffer the caller keeps alive and mapped, e.g. an
        mmap) as a Vulkan buffer on the same bytes (VK_EXT_external_memory_host): the GPU reads
        and writes it directly. Its length must be a multiple of host_import_alignment."""
        vk = self.vk
        align = self.host_import_alignment
        if not align:
            raise GpuUnavailable("device lacks VK_EXT_external_memory_host")
        pointer = vk.ffi.from_buffer(memory)
        size = len(memoryview(memory).cast("B"))
        if int(vk.ffi.cast("uintptr_t", pointer)) % align or size % align or not size:
            raise GpuUnavailable(f"host memory at {int(vk.ffi.cast('uintptr_t', pointer)):#x}, {size} bytes, is not "
                                 f"aligned to {align} bytes for import")
        handle_type = vk.VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT
        # our own output struct: the wrapper's would leave sType unset (a validation error)
        props = vk.ffi.new("VkMemoryHostPointerPropertiesEXT*")
        props.sType = vk.VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT
        get_props = vk.vkGetDeviceProcAddr(self.device, "vkGetMemoryHostPointerPropertiesEXT")
        get_props(self.device, handle_type, pointer, props)
        ext_info = vk.VkExternalMemoryBufferCreateInfo(sType=vk.VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
                                                       handleTypes=handle_type)
        bci = vk.VkBufferCreateInfo(sType=vk.VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, pNext=ext_info, size=size,
                                    usage=usage, sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE)
        handle = vk.vkCreateBuffer(self.device, bci, None)
        try:
            req = vk.vkGetBufferMemoryRequirements(self.device, handle)
            bits = int(props.memoryTypeBits) & int(req.memoryTypeBits)
            # coherent: the host's writes need no flush (the memory is never mapped through Vulkan)
            mtype = self._memory_type(bits, vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
            info = vk.VkImportMemoryHostPointerInfoEXT(sType=vk.VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
                                                       handleType=handle_type, pHostPointer=pointer)
            mai = vk.VkMemoryAllocateInfo(sType=vk.VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, pNext=info,
                                          allocationSize=size, memoryTypeIndex=mtype)
            mem = vk.vkAllocateMemory(self.device, mai, None)
        except Exception as exc:
            vk.vkDestroyBuffer(self.device, handle, None)
            raise GpuUnavailable(f"cannot import {size} bytes of host memory: {exc!r}") from exc
        vk.vkBindBufferMemory(self.device, handle, mem, 0)
        # mapping stays None: the caller reads and writes its own view of these bytes
        return Buffer(handle, mem, size, True, False, None, 0, mtype, size)

    def close(self) -> None:
        vk = self.vk
        dev = getattr(self, "device", None)
        if dev is not None:
            vk.vkDeviceWaitIdle(dev)
            vk.vkDestroyDevice(dev, None)
            self.device = None
        if self._messenger is not None:
            destroy = vk.vkGetInstanceProcAddr(self.instance, "vkDestroyDebugUtilsMessengerEXT")
            destroy(self.instance, self._messenger, None)
            self._messenger = None
        inst = getattr(self, "instance", None)
        if inst is not None:
            vk.vkDestroyInstance(inst, None)
            self.instance = None

    def __enter__(self) -> "VulkanDevice":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
