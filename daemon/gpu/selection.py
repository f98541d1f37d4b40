"""DSD_DECODE=gpu|cpu|auto: which decoder a batch goes to, and a description for `dsd doctor`.

- gpu:  always the Vulkan decoder; a batch fails with GpuUnavailable when there is none.
- cpu:  always the CPU codec.
- auto (default): the GPU when a hardware GPU (not a CPU driver such as lavapipe) is open and
  the batch decodes to at least DSD_DECODE_GPU_MIN_BYTES (default 4 MiB), the CPU otherwise:
  below that the fixed cost of a submit (~50-100 µs) and the upload outweigh the GPU's speed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

ENV_DECODE = "DSD_DECODE"
ENV_MIN_BYTES = "DSD_DECODE_GPU_MIN_BYTES"
DEFAULT_MIN_BYTES = 4 << 20
MODES = ("gpu", "cpu", "auto")


@dataclass(frozen=True)
class DecodeChoice:
    backend: str  # "gpu" or "cpu"
    reason: str


def decode_mode() -> str:
    """The DSD_DECODE setting (default auto); ValueError for an unknown value."""
    mode = os.environ.get(ENV_DECODE, "auto").strip().lower() or "auto"
    if mode == "vulkan":
        mode = "gpu"
    if mode not in MODES:
        raise ValueError(f"{ENV_DECODE}={mode!r}: expected one of gpu, cpu, auto")
    return mode


@contextmanager
def decode_mode_set(mode: str) -> Iterator[None]:
    """Sets DSD_DECODE for the duration of a with-block and restores the old value."""
    if mode not in MODES:
        raise ValueError(f"decode mode {mode!r}: expected one of gpu, cpu, auto")
    old = os.environ.get(ENV_DECODE)
    os.environ[ENV_DECODE] = mode
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_DECODE, None)
        else:
            os.environ[ENV_DECODE] = old


def min_gpu_bytes() -> int:
    raw = os.environ.get(ENV_MIN_BYTES)
    if raw is None:
        return DEFAULT_MIN_BYTES
    try:
        return max(0, int(raw))
    except ValueError as exc:
        raise ValueError(f"{ENV_MIN_BYTES}={raw!r} is not a byte count") from exc


def choose_decoder(batch_decoded_bytes: int, *, gpu_kind: str | None, mode: str | None = None) -> DecodeChoice:
    """Picks the backend for one batch. `gpu_kind` is the open device's kind
    ("discrete", "integrated", "virtual", "cpu", "other") or None when no GPU decoder is open."""
    mode = mode or decode_mode()
    if mode == "cpu":
        return DecodeChoice("cpu", f"{ENV_DECODE}=cpu")
    if mode == "gpu":
        if gpu_kind is None:
            return DecodeChoice("gpu", f"{ENV_DECODE}=gpu but no Vulkan device is open")
        return DecodeChoice("gpu", f"{ENV_DECODE}=gpu")
    if gpu_kind is None:
        return DecodeChoice("cpu", "auto: no Vulkan device")
    if gpu_kind == "cpu":
        return DecodeChoice("cpu", "auto: the only Vulkan device is a CPU driver")
    limit = min_gpu_bytes()
    if batch_decoded_bytes < limit:
        return DecodeChoice("cpu", f"auto: batch of {batch_decoded_bytes} bytes < {limit}")
    return DecodeChoice("gpu", f"auto: batch of {batch_decoded_bytes} bytes >= {limit}")


def describe(decoder=None) -> dict:
    """What `dsd doctor` / STATS print about GPU decoding: the mode, the device, the shader and
    why each was chosen. Opens a device only when no decoder is given."""
    out: dict = {"mode": None, "device": None, "shader": None}
    try:
        out["mode"] = decode_mode()
    except ValueError as exc:
        out["mode_error"] = str(exc)
    from .errors import GpuError

    own = None
    try:
        if decoder is None:
            from .decoder import GpuDecoder

            own = decoder = GpuDecoder()
        info = decoder.device.info
        out["device"] = {
            "name": info.name,
            "kind": info.kind,
            "api": info.api_version,
            "subgroup_size": info.subgroup_size,
            "chosen_because": info.reason,
            "candidates": list(info.candidates),
            "compute_queue_family": info.compute_family,
            "transfer_queue_family": info.transfer_family,
            "nv_memory_decompression": info.nv_memory_decompression,
            "external_memory_fd": info.external_memory_fd,
            "vulkan_memory_model": info.vulkan_memory_model,
            "timeline_semaphore": info.timeline_semaphore,
            "validation": info.validation,
        }
        out["shader"] = {"variant": decoder.shader, "spirv": decoder.spv_name + ".spv",
                         "chosen_because": decoder.shader_reason, "persistent_groups": decoder.persistent,
                         "tile_order": decoder.tile_order if decoder.persistent else "off (no persistent groups)",
                         "completion": decoder.completion,
                         "pipeline_cache": decoder._cache_file}
        out["auto_min_bytes"] = min_gpu_bytes()
    except GpuError as exc:
        out["unavailable"] = str(exc)
    finally:
        if own is not None:
            own.close()
    return out
