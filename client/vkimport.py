"""Import a daemon-decoded GPU buffer (``Client.decode_to_gpu``) into the caller's own Vulkan device.

The daemon exports its buffer's memory as an opaque fd (VK_KHR_external_memory_fd). This module
checks that the caller's physical device is the daemon's (deviceUUID and driverUUID: an opaque
fd only imports on the same device and driver), creates a VkBuffer with
VkExternalMemoryBufferCreateInfo and allocates its memory with VkImportMemoryFdInfoKHR. After a
successful import the fd belongs to the Vulkan driver (Vulkan's rule: never close it); when the
import fails the fd stays with the ``GpuBuffer``, whose ``close()`` closes it.

The caller's device must have VK_KHR_external_memory_fd enabled. Before the first use of the
buffer on a queue, record ``acquire_barrier(queue_family)``: the daemon released the buffer to
VK_QUEUE_FAMILY_EXTERNAL after its last write, and this is the matching acquire.

Kept apart from the rest of ``dsd.client`` so a client that never touches Vulkan never loads
libvulkan. The ``vulkan`` package is cffi: every nested struct passed to a call is held in a
local variable until the call returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import GpuHandoffError

# The usage an imported buffer gets unless the caller says otherwise: read by shaders and copies.
DEFAULT_USAGE = 0x1 | 0x2 | 0x20   # TRANSFER_SRC | TRANSFER_DST | STORAGE_BUFFER
WHOLE_SIZE = 0xFFFFFFFFFFFFFFFF


def _vk():
    try:
        import vulkan as vk
    except (ImportError, OSError) as exc:
        raise GpuHandoffError(f"the vulkan package or libvulkan is not usable: {exc}", code="GPU_UNAVAILABLE") from exc
    return vk


def device_uuids(physical_device: Any) -> tuple[bytes, bytes]:
    """(deviceUUID, driverUUID) of a VkPhysicalDevice, 16 bytes each."""
    vk = _vk()
    ids = vk.VkPhysicalDeviceIDProperties(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES)
    props = vk.VkPhysicalDeviceProperties2(sType=vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, pNext=ids)
    vk.vkGetPhysicalDeviceProperties2(physical_device, props)
    return bytes(vk.ffi.buffer(ids.deviceUUID, 16)), bytes(vk.ffi.buffer(ids.driverUUID, 16))


@dataclass
class ImportedBuffer:
    """The caller's VkBuffer over the daemon's decoded bytes; request i is bytes
    [offsets[i], offsets[i] + sizes[i]). ``close()`` destroys the buffer and frees the memory."""

    device: Any
    buffer: Any
    memory: Any
    size: int
    offsets: list[int]
    sizes: list[int]
    closed: bool = False

    def acquire_barrier(self, queue_family: int, *, access: int | None = None) -> Any:
        """A VkBufferMemoryBarrier taking the buffer from VK_QUEUE_FAMILY_EXTERNAL to
        ``queue_family``; record it (vkCmdPipelineBarrier) before the buffer's first use.
        ``access``: the dstAccessMask (default: shader and transfer reads)."""
        vk = _vk()
        if access is None:
            access = vk.VK_ACCESS_SHADER_READ_BIT | vk.VK_ACCESS_TRANSFER_READ_BIT
        return vk.VkBufferMemoryBarrier(
            sType=vk.VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER,
            srcAccessMask=0,
            dstAccessMask=access,
            srcQueueFamilyIndex=vk.VK_QUEUE_FAMILY_EXTERNAL,
            dstQueueFamilyIndex=queue_family,
            buffer=self.buffer,
            offset=0,
            size=WHOLE_SIZE,
        )

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        vk = _vk()
        vk.vkDestroyBuffer(self.device, self.buffer, None)
        vk.vkFreeMemory(self.device, self.memory, None)

    def __enter__(self) -> "ImportedBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def import_buffer(gpu_buffer: Any, *, device: Any, physical_device: Any, usage: int = DEFAULT_USAGE) -> ImportedBuffer:
    """Import ``gpu_buffer`` (from ``decode_to_gpu``) into ``device``. On success the fd is the
    driver's and ``gpu_buffer.fd`` becomes -1; on failure it is left for ``gpu_buffer.close()``."""
    vk = _vk()
    if gpu_buffer.closed:
        raise GpuHandoffError("the GPU buffer was closed", code="UNKNOWN_BUFFER")
    if gpu_buffer.fd < 0:
        raise GpuHandoffError("no fd to import: the buffer holds no bytes, or its fd was imported or taken already",
                              code="NO_FD")
    dev_uuid, drv_uuid = device_uuids(physical_device)
    if (dev_uuid, drv_uuid) != (gpu_buffer.device_uuid, gpu_buffer.driver_uuid):
        raise GpuHandoffError(f"the daemon decoded on device {gpu_buffer.device_uuid.hex()} (driver "
                              f"{gpu_buffer.driver_uuid.hex()}), this device is {dev_uuid.hex()} (driver "
                              f"{drv_uuid.hex()}): an opaque fd imports only on the same device and driver",
                              code="DEVICE_MISMATCH")
    ext = vk.VkExternalMemoryBufferCreateInfo(
        sType=vk.VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
        handleTypes=vk.VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT,
    )
    bci = vk.VkBufferCreateInfo(sType=vk.VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, pNext=ext, size=gpu_buffer.size,
                                usage=usage, sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE)
    buffer = vk.vkCreateBuffer(device, bci, None)
    memory = None
    try:
        req = vk.vkGetBufferMemoryRequirements(device, buffer)
        if not req.memoryTypeBits & (1 << gpu_buffer.memory_type_index) or req.size > gpu_buffer.allocation_size:
            raise GpuHandoffError(f"this device's buffer needs memory types 0x{req.memoryTypeBits:x} and "
                                  f"{req.size} bytes; the export has type {gpu_buffer.memory_type_index} and "
                                  f"{gpu_buffer.allocation_size} bytes", code="IMPORT_FAILED")
        fd_info = vk.VkImportMemoryFdInfoKHR(sType=vk.VK_STRUCTURE_TYPE_IMPORT_MEMORY_FD_INFO_KHR,
                                             handleType=vk.VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT,
                                             fd=gpu_buffer.fd)
        mai = vk.VkMemoryAllocateInfo(sType=vk.VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, pNext=fd_info,
                                      allocationSize=gpu_buffer.allocation_size,
                                      memoryTypeIndex=gpu_buffer.memory_type_index)
        try:
            memory = vk.vkAllocateMemory(device, mai, None)
        except vk.VkError as exc:
            raise GpuHandoffError(f"vkAllocateMemory refused the fd: {exc!r}", code="IMPORT_FAILED") from exc
        gpu_buffer._fd_imported()            # Vulkan owns the fd from here on
        vk.vkBindBufferMemory(device, buffer, memory, 0)
    except BaseException:
        if memory is not None:
            vk.vkFreeMemory(device, memory, None)
        vk.vkDestroyBuffer(device, buffer, None)
        raise
    return ImportedBuffer(device, buffer, memory, gpu_buffer.size, [r.offset for r in gpu_buffer.results],
                          [r.size for r in gpu_buffer.results])
