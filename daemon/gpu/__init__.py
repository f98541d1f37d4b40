"""dsd.daemon.gpu — GDeflate decompression on a Vulkan GPU.

The daemon owns one Vulkan device (`VulkanDevice`: device choice, queues, memory) and one
`GpuDecoder` per device (pipeline, descriptor set, command buffer, buffer pool). Batches of
GDeflate tile streams go in; each request gets its bytes, or a `GpuDecodeError` that touches
no other request. Results land in host memory (`decode_batch`, `decode_batch_into` for a
caller's shared memory) or stay on the GPU (`decode_batch_device`). `decode_mode()` applies
DSD_DECODE=gpu|cpu|auto and `describe()` says which device and shader were chosen and why.
The shaders themselves live in shaders/ (GLSL) and ship as dsd/shaders/*.spv.
"""

from .container import StreamPlan, plan_stream
from .decoder import BatchStatistics, DecoderStatistics, DeviceBatch, GpuDecoder
from .device import DeviceInfo, VulkanDevice
from .errors import GpuDecodeError, GpuError, GpuUnavailable
from .selection import DecodeChoice, choose_decoder, decode_mode, describe

__all__ = [
    "BatchStatistics",
    "DecodeChoice",
    "DecoderStatistics",
    "DeviceBatch",
    "DeviceInfo",
    "GpuDecodeError",
    "GpuDecoder",
    "GpuError",
    "GpuUnavailable",
    "StreamPlan",
    "VulkanDevice",
    "choose_decoder",
    "decode_mode",
    "describe",
    "plan_stream",
]
