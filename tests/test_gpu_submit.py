"""How a GPU batch is submitted and waited for: dsd._native.VkSubmitter (C, GIL released) or the
Python path, with a timeline semaphore or a fence (DSD_GPU_SUBMIT, DSD_GPU_SYNC). Every
combination must give the same bytes and the same per-request errors, on lavapipe in CI."""

from __future__ import annotations

import random

import pytest

from gpu_support import use_lavapipe

use_lavapipe()

gpu = pytest.importorskip("dsd.daemon.gpu")
from dsd import _native  # noqa: E402
from dsd.daemon.gpu import errors as E  # noqa: E402

MODES = [("native", "timeline"), ("native", "fence"), ("python", "timeline"), ("python", "fence")]


def batch() -> tuple[list, list]:
    """Fixed-Huffman, dynamic and stored tiles from the CPU encoder, plus one corrupt stream."""
    codec = pytest.importorskip("dsd.codec.gdeflate")
    rng = random.Random(11)
    words = [b"tile", b"GPU", b"batch", b"of", b"a", b"\x00\x01"]
    origs = [b"A", bytes(rng.getrandbits(8) for _ in range(3000))]
    origs += [b" ".join(rng.choice(words) for _ in range(n)) for n in (3, 40, 20000, 30000)]
    items = [(codec.compress(o, level=9), len(o)) for o in origs]
    bad = bytearray(items[-1][0])
    bad[8 + 4 * (bad[2] | bad[3] << 8)] |= 0b110  # first block of tile 0: reserved type 3
    items.append((bytes(bad), len(origs[-1])))
    return items, origs


@pytest.mark.parametrize("submit,sync", MODES)
def test_every_submit_and_completion_mode_decodes_the_same(monkeypatch, tmp_path, submit, sync):
    monkeypatch.setenv("DSD_GPU_SUBMIT", submit)
    monkeypatch.setenv("DSD_GPU_SYNC", sync)
    items, origs = batch()
    try:
        dec = gpu.GpuDecoder(cache_dir=str(tmp_path))
    except gpu.GpuUnavailable as exc:
        pytest.skip(f"no Vulkan device: {exc}")
    try:
        assert dec.completion.startswith("timeline semaphore" if sync == "timeline" else "fence")
        assert dec.completion.endswith(f"{submit} submit")
        for _ in range(3):  # the first records the command buffer, the others reuse it
            res = dec.decode_batch(items)
            assert res[:-1] == origs
            assert isinstance(res[-1], gpu.GpuDecodeError) and res[-1].code == E.E_BLOCK_TYPE
            last = dec.statistics().last_batch
            assert last is not None and last.submit_seconds > 0
            assert last.dispatch_seconds is None or last.dispatch_seconds > 0
        # A batch of good streams after a bad one: the error count starts again at zero.
        assert dec.decode_batch(items[:2]) == origs[:2]
    finally:
        dec.close()


@pytest.mark.parametrize("var,value", [("DSD_GPU_SUBMIT", "cuda"), ("DSD_GPU_SYNC", "event")])
def test_unknown_submit_or_sync_setting_is_refused(monkeypatch, tmp_path, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(gpu.GpuUnavailable, match=var):
        gpu.GpuDecoder(cache_dir=str(tmp_path))


def test_vksubmitter_refuses_missing_handles_and_entry_points():
    with pytest.raises(ValueError, match="7 entry points"):
        _native.VkSubmitter((1, 2), 1, 1, 1, 1, True)
    # Timeline mode needs vkGetSemaphoreCounterValue and vkWaitSemaphores (entries 1 and 2).
    with pytest.raises(ValueError, match="is 0"):
        _native.VkSubmitter((1, 0, 0, 1, 1, 1, 1), 1, 1, 1, 1, True)
    with pytest.raises(ValueError, match="is 0"):
        _native.VkSubmitter((1, 1, 1, 1, 1, 1, 1), 1, 0, 1, 1, True)
    with pytest.raises(TypeError):
        _native.VkSubmitter([1] * 7, 1, 1, 1, 1, True)


def test_describe_reports_the_completion_path(tmp_path):
    try:
        dec = gpu.GpuDecoder(cache_dir=str(tmp_path))
    except gpu.GpuUnavailable as exc:
        pytest.skip(f"no Vulkan device: {exc}")
    try:
        out = gpu.describe(dec)
    finally:
        dec.close()
    assert out["shader"]["completion"] == dec.completion
    assert isinstance(out["device"]["timeline_semaphore"], bool)


def test_pipeline_statistics_are_empty_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("DSD_GPU_PIPELINE_STATS", raising=False)
    try:
        dec = gpu.GpuDecoder(cache_dir=str(tmp_path))
    except gpu.GpuUnavailable as exc:
        pytest.skip(f"no Vulkan device: {exc}")
    try:
        assert not dec.device.pipeline_stats
        assert dec.pipeline_statistics() == {}
    finally:
        dec.close()
