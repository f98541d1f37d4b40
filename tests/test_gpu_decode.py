"""GDeflate decoding through the Vulkan shader, on lavapipe in CI (its subgroup size is 8, so
this runs the shared-memory lane path; the 32-wide path runs on real GPUs, docs/gpu.md)."""

from __future__ import annotations

import hashlib
import mmap
import os
import random
import struct

import pytest

from gpu_support import decoder  # noqa: F401 (a fixture)
from gpu_support import conformance_dir, malformed, manifest, use_lavapipe

use_lavapipe()

gpu = pytest.importorskip("dsd.daemon.gpu")
from dsd.daemon.gpu import errors as E  # noqa: E402

CONF = conformance_dir()
needs_conf = pytest.mark.skipif(CONF is None, reason="no GDeflate conformance set (../shared/conformance/gdeflate)")


def container(tiles: list[bytes], last_size: int) -> bytes:
    """A tile stream around raw tiles (format doc §1)."""
    n = len(tiles)
    offs, pos = [], 0
    for t in tiles:
        offs.append(pos)
        pos += len(t)
    table = [len(tiles[-1])] + offs[1:]
    packed = 1 | ((last_size & 0xFFFF if last_size < 65536 else 0) << 2)
    return bytes([4, 0xFB]) + struct.pack("<HI", n, packed) + struct.pack(f"<{n}I", *table) + b"".join(tiles)


@pytest.fixture(scope="module")
def conformance_results(decoder):
    if CONF is None:
        pytest.skip("no conformance set")
    names = sorted(manifest(CONF))
    items = [((CONF / n).read_bytes(), None) for n in names]
    return dict(zip(names, decoder.decode_batch(items)))


@needs_conf
@pytest.mark.parametrize("name", sorted(manifest(CONF)) if CONF else [])
def test_conformance_stream_matches_manifest(conformance_results, name):
    got = conformance_results[name]
    assert isinstance(got, bytes), got
    assert hashlib.sha256(got).hexdigest() == manifest(CONF)[name]
    original = CONF / (name.split(".")[0] + ".bin")
    if original.exists():
        assert got == original.read_bytes()


@needs_conf
@pytest.mark.parametrize("name", malformed(CONF) if CONF else [])
def test_malformed_stream_is_an_error_for_that_request_only(decoder, name):
    good = (CONF / "text-65537.9.gdef").read_bytes()
    res = decoder.decode_batch([(good, None), ((CONF / name).read_bytes(), None), (good, None)])
    assert isinstance(res[1], gpu.GpuDecodeError), res[1]
    assert res[1].code != 0 and str(res[1])
    assert res[0] == res[2] and isinstance(res[0], bytes) and len(res[0]) == 65537


@needs_conf
def test_mixed_batch_gives_each_request_its_own_result(decoder):
    text = (CONF / "text-65537.9.gdef").read_bytes()
    zeros = (CONF / "zeros-1048576.9.gdef").read_bytes()
    corrupt = bytearray(text)
    corrupt[8 + 4 * 2: 8 + 4 * 2 + 64] = os.urandom(64)  # the first words of tile 0
    items = [
        (text, 65537),
        (bytes(corrupt), None),
        (zeros, 1 << 20),
        (b"\x04\xfb\x00\x00\x00\x00\x00\x00", 0),  # empty payload
        (b"\x05\xfa", None),
        (text, 1234),  # size mismatch
        (text, None),
    ]
    res = decoder.decode_batch(items)
    assert res[0] == res[6] and hashlib.sha256(res[0]).hexdigest() == manifest(CONF)["text-65537.9.gdef"]
    assert isinstance(res[1], gpu.GpuDecodeError) and res[1].tile == 0
    assert res[2] == bytes(1 << 20)
    assert res[3] == b""
    assert isinstance(res[4], gpu.GpuDecodeError) and res[4].code == E.E_CONTAINER
    assert isinstance(res[5], gpu.GpuDecodeError) and res[5].code == E.E_SIZE_MISMATCH


@needs_conf
def test_errors_of_one_batch_do_not_leak_into_the_next(decoder):
    # The failed-tile count and status words persist in host memory between batches: the
    # decoder clears them after a batch with errors, so the next batch (same shape, so the
    # recorded command buffer is resubmitted) reports only its own results.
    text = (CONF / "text-65537.9.gdef").read_bytes()
    corrupt = bytearray(text)
    corrupt[8 + 4 * 2: 8 + 4 * 2 + 64] = os.urandom(64)
    for _ in range(2):
        bad = decoder.decode_batch([(text, None), (bytes(corrupt), None)])
        assert isinstance(bad[0], bytes) and isinstance(bad[1], gpu.GpuDecodeError), bad
        good = decoder.decode_batch([(text, None), (text, None)])
        assert good[0] == good[1] == bad[0]
        assert decoder.statistics().last_batch.streams == 2
    before = decoder.statistics().errors
    assert decoder.decode_batch_pool([(text, None), (text, None)]) == [None, None]
    assert decoder.statistics().errors == before


def test_input_views_of_any_layout(decoder):
    tile = bytes.fromhex("73040000") + bytes(33 * 4)
    stream = container([tile], 1)
    as_words = memoryview(bytearray(stream)).cast("I")     # another format: cast to bytes
    assert decoder.decode_batch([(as_words, 1), (bytearray(stream), 1)]) == [b"A", b"A"]
    strided = memoryview(bytes(2 * len(stream)))[::2]      # not contiguous: a clear error
    with pytest.raises(TypeError):
        decoder.decode_batch([(strided, 1)])


def test_hand_built_fixed_block_tile(decoder):
    # The format doc's §2.10 vector: 'A' at level 9 is one fixed-Huffman tile of 34 words.
    tile = bytes.fromhex("73040000") + bytes(33 * 4)
    assert decoder.decode_batch([(container([tile], 1), 1)]) == [b"A"]


def test_random_garbage_tiles_finish_with_errors(decoder):
    rng = random.Random(1234)
    items = []
    for i in range(48):
        tiles = [bytes(rng.getrandbits(8) for _ in range(rng.choice([4, 64, 400, 3000]))) for _ in range(rng.randint(1, 3))]
        items.append((container(tiles, rng.randint(1, 65536)), None))
    # An all-zero tile is an endless run of empty non-final stored blocks: it must stop.
    items.append((container([bytes(256)], 100), None))
    res = decoder.decode_batch(items)
    assert len(res) == len(items)
    assert all(isinstance(r, (bytes, gpu.GpuDecodeError)) for r in res)
    assert isinstance(res[-1], gpu.GpuDecodeError) and res[-1].code in (E.E_OVERREAD, E.E_BUDGET)
    assert sum(isinstance(r, gpu.GpuDecodeError) for r in res) >= len(res) - 2


@needs_conf
def test_step_budget_stops_a_long_tile(tmp_path):
    dec = gpu.GpuDecoder(step_budget=40, cache_dir=str(tmp_path))
    try:
        res = dec.decode_batch([((CONF / "text-65537.9.gdef").read_bytes(), None)])
    finally:
        dec.close()
    assert isinstance(res[0], gpu.GpuDecodeError) and res[0].code == E.E_BUDGET


@needs_conf
def test_decode_into_caller_buffers_and_device_buffer(decoder):
    data = (CONF / "code-200000.9.gdef").read_bytes()
    want = (CONF / "code-200000.bin").read_bytes() if (CONF / "code-200000.bin").exists() else None
    region = bytearray(300000)
    errs = decoder.decode_batch_into([(data, 200000), (b"junk", None)], [memoryview(region)[:200000], bytearray(8)])
    assert errs[0] is None and isinstance(errs[1], gpu.GpuDecodeError)
    if want is not None:
        assert bytes(region[:200000]) == want
    with decoder.decode_batch_device([(data, None), (b"junk", None)]) as batch:
        assert batch.results[0] is None and isinstance(batch.results[1], gpu.GpuDecodeError)
        assert batch.read(0) == bytes(region[:200000])


@needs_conf
def test_buffers_are_reused_across_batches(decoder):
    data = (CONF / "text-65537.9.gdef").read_bytes()
    decoder.decode_batch([(data, None)])
    before = {k: b.handle for k, b in decoder._buffers.items()}
    for _ in range(3):
        decoder.decode_batch([(data, None)] * 2)
    assert {k: b.handle for k, b in decoder._buffers.items()} == before
    st = decoder.statistics()
    assert st.batches >= 4 and st.last_batch.tiles == 4 and st.shader in ("wave32", "shared")


def test_pipeline_cache_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dec = gpu.GpuDecoder()
    try:
        assert dec._cache_file.startswith(str(tmp_path / "dsd"))
        assert os.path.exists(dec._cache_file)
    finally:
        dec.close()
    again = gpu.GpuDecoder()
    try:
        assert again.pipeline_cache_loaded
    finally:
        again.close()


@needs_conf
def test_validation_layers_report_nothing(tmp_path):
    try:
        device = gpu.VulkanDevice(validation=True)
    except gpu.GpuUnavailable as exc:
        pytest.skip(str(exc))
    try:
        dec = gpu.GpuDecoder(device, cache_dir=str(tmp_path))
        res = dec.decode_batch([((CONF / "text-65537.9.gdef").read_bytes(), None), (b"junk", None)])
        with dec.decode_batch_device([((CONF / "zeros-65536.9.gdef").read_bytes(), None)]) as batch:
            assert batch.read(0) == bytes(65536)
        if device.host_import_alignment:  # the GPU route's way in: host memory imported, copied on the GPU
            text = (CONF / "text-65537.9.gdef").read_bytes()
            host = mmap.mmap(-1, 1 << 20)
            host[4096:4096 + len(text)] = text
            imported = device.import_host(host, 0x1)  # VK_BUFFER_USAGE_TRANSFER_SRC_BIT
            out = bytearray(65537)
            try:
                assert dec.decode_batch_into([(memoryview(host)[4096:4096 + len(text)], 65537)], [out],
                                             source=(imported, [4096])) == [None]
            finally:
                device.destroy_buffer(imported)
                host.close()
            assert bytes(out) == res[0]
        dec.close()
        assert isinstance(res[0], bytes) and isinstance(res[1], gpu.GpuDecodeError)
        assert device.info.validation
        assert device.validation_messages == []
    finally:
        device.close()


def test_describe_names_device_and_shader(decoder):
    info = gpu.describe(decoder)
    assert info["device"]["name"] == decoder.device.info.name
    assert info["shader"]["variant"] == decoder.shader
    assert info["device"]["chosen_because"]
    # lavapipe runs one workgroup per tile, so there is no hand-out order to choose
    assert info["shader"]["tile_order"] == (decoder.tile_order if decoder.persistent else "off (no persistent groups)")


@needs_conf
def test_device_buffer_exports_an_fd(decoder):
    if not decoder.device.info.external_memory_fd:
        pytest.skip("driver lacks VK_KHR_external_memory_fd")
    data = (CONF / "text-65537.9.gdef").read_bytes()
    with decoder.decode_batch_device([(data, None)], exportable=True) as batch:
        fd = batch.export_fd()
        try:
            assert os.fstat(fd).st_size >= 65537
        finally:
            os.close(fd)
        assert hashlib.sha256(batch.read(0)).hexdigest() == manifest(CONF)["text-65537.9.gdef"]


@needs_conf
def test_staged_decode_reads_files_straight_into_staging(decoder, tmp_path):
    names = ["text-65537.9.gdef", "code-200000.9.gdef", "bad-magic.gdef"]
    paths = [CONF / n for n in names]
    views = decoder.reserve_staging([p.stat().st_size for p in paths])
    for p, v in zip(paths, views):
        with open(p, "rb") as f:
            assert f.readinto(v) == len(v)  # the one CPU copy: page cache -> staging
    del v
    errs = decoder.decode_staged([65537, 200000, None])
    assert errs[0] is None and errs[1] is None and isinstance(errs[2], gpu.GpuDecodeError)
    assert hashlib.sha256(decoder.read_pool_output(0, 65537)).hexdigest() == manifest(CONF)["text-65537.9.gdef"]
    # Host destinations work the same way.
    views = decoder.reserve_staging([paths[1].stat().st_size])
    with open(paths[1], "rb") as f:
        f.readinto(views[0])
    out = bytearray(200000)
    assert decoder.decode_staged([200000], outputs=[out]) == [None]
    assert hashlib.sha256(out).hexdigest() == manifest(CONF)["code-200000.9.gdef"]
    with pytest.raises(gpu.GpuError):
        decoder.decode_staged([1])


@needs_conf
def test_large_batch_into_caller_buffers_uses_the_parallel_copy(decoder):
    from dsd.daemon.gpu import decoder as decoder_module

    data = (CONF / "zeros-1048576.9.gdef").read_bytes()
    region = bytearray(b"\xAA" * (10 << 20))
    view = memoryview(region)
    outs = [view[i << 20: (i + 1) << 20] for i in range(10)]
    assert 10 << 20 >= decoder_module.PARALLEL_COPY_MIN
    assert decoder.decode_batch_into([(data, 1 << 20)] * 10, outs) == [None] * 10
    del outs, view
    assert region == bytes(10 << 20)
