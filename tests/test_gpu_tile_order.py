"""The order the GPU decoder hands tiles out in (docs/gpu.md, "Tile order"): the native
estimate against its Python twin, bad arguments, and the shader's remapping of hand-out
positions to tiles, which must not change a single output byte or error."""

from __future__ import annotations

import os
import random
import struct

import pytest

from gpu_support import decoder  # noqa: F401 (a fixture)
from gpu_support import conformance_dir, use_lavapipe

use_lavapipe()

gpu = pytest.importorskip("dsd.daemon.gpu")
from dsd.daemon.gpu import decoder as decoder_module  # noqa: E402
from dsd.daemon.gpu.container import plan_stream  # noqa: E402

native = pytest.importorskip("dsd._native")
codec = pytest.importorskip("dsd.codec")

CONF = conformance_dir()


def _streams() -> list[bytes]:
    rng = random.Random(7)
    text = b" ".join(rng.choice([b"tile", b"order", b"costly", b"first", b"wave"]) for _ in range(60000))
    noise = rng.randbytes(150000)
    out = [codec.gdeflate.compress(text, level=9), codec.gdeflate.compress(noise, level=9),
           codec.gdeflate.compress(text[:70000] + noise[:70000], level=1), codec.gdeflate.compress(b"x", level=9)]
    if CONF is not None:
        out += [p.read_bytes() for p in sorted(CONF.glob("*.gdef")) if not p.name.startswith("bad-")][:12]
    return out


def _args(streams):
    args = []
    for s in streams:
        plan = plan_stream(memoryview(s), None)
        if plan.num_tiles:
            args.append((s, plan.num_tiles, plan.last_size))
    return args


def _costs(args) -> list[int]:
    costs = []
    for data, n, last in args:
        table = struct.unpack_from(f"<{n}I", data, 8)
        for i in range(n):
            start = table[i] if i else 0
            end = table[i + 1] if i + 1 < n else start + table[0]
            out = 65536 if i + 1 < n else last
            costs.append(out * out // max(end - start, 1))
    return costs


def test_native_order_matches_the_python_twin_and_puts_costly_tiles_first():
    args = _args(_streams())
    order = native.tile_order(args)
    assert order == decoder_module._tile_order_python(args)
    idx = list(struct.unpack(f"<{len(order) // 4}I", order))
    assert sorted(idx) == list(range(len(idx)))
    costs = _costs(args)
    ranked = [costs[i] for i in idx]
    assert ranked == sorted(ranked, reverse=True)
    # Stored (incompressible) tiles cost least per byte: the noise stream's full tiles come after
    # the text stream's.
    text_tiles, noise_first = args[0][1], args[0][1]
    assert max(idx.index(i) for i in range(text_tiles)) < idx.index(noise_first)


def test_corrupt_tables_still_give_a_permutation():
    rng = random.Random(3)
    args = []
    for _ in range(20):
        n = rng.randrange(1, 40)
        data = bytes([4, 0xFB]) + struct.pack("<HI", n, 1) + rng.randbytes(4 * n + rng.randrange(0, 64))
        args.append((data, n, rng.randrange(1, 65537)))
    order = native.tile_order(args)
    assert order == decoder_module._tile_order_python(args)
    assert sorted(struct.unpack(f"<{len(order) // 4}I", order)) == list(range(sum(a[1] for a in args)))


@pytest.mark.parametrize("bad, message", [
    ([(b"\x04\xfb" + bytes(6), 3, 100)], "do not fit"),
    ([(bytes(64), 0, 100)], "do not fit"),
    ([(bytes(64), 1, 70000)], "do not fit"),
    ([(bytes(64), 1)], None),
    ([b"not a tuple"], None),
    (5, "sequence"),
])
def test_bad_arguments_raise(bad, message):
    with pytest.raises((ValueError, TypeError)) as info:
        native.tile_order(bad)
    if message:
        assert message in str(info.value)


def test_empty_batch_gives_an_empty_order():
    assert native.tile_order([]) == b""


def test_any_hand_out_order_decodes_the_same_bytes_and_errors(decoder):
    rng = random.Random(11)
    text = b"".join(rng.choice([b"alpha ", b"beta ", b"gamma ", b"delta "]) for _ in range(30000))
    good = codec.gdeflate.compress(text, level=9)
    corrupt = bytearray(good)
    n = good[2] | good[3] << 8
    start = 8 + 4 * n + struct.unpack_from("<I", good, 12)[0]  # tile 1's first bytes
    corrupt[start: start + 48] = rng.randbytes(48)
    small = codec.gdeflate.compress(text[:5000], level=1)
    items = [(good, len(text)), (bytes(corrupt), len(text)), (small, 5000), (good, len(text))]
    base = decoder.decode_batch(items)
    assert base[0] == base[3] == text and base[2] == text[:5000]
    assert isinstance(base[1], gpu.GpuDecodeError) and base[1].tile == 1
    try:
        for order in (lambda v, r, t: range(t - 1, -1, -1), lambda v, r, t: [*range(1, t, 2), *range(0, t, 2)]):
            decoder.tile_order_fn = order
            res = decoder.decode_batch(items)
            assert res[0] == res[3] == text and res[2] == text[:5000]
            assert isinstance(res[1], gpu.GpuDecodeError) and (res[1].code, res[1].tile) == (base[1].code, 1)
        # The shader really follows the list: hand tile 0 out every time and the second
        # stream's tiles never run (its region keeps the previous batch's bytes).
        other = codec.gdeflate.compress(text[::-1], level=9)
        assert decoder.decode_batch([(small, 5000), (other, len(text))])[1] == text[::-1]
        decoder.tile_order_fn = lambda v, r, t: [0] * t
        res = decoder.decode_batch([(small, 5000), (good, len(text))])
        assert res[0] == text[:5000] and res[1] == text[::-1]
    finally:
        decoder.tile_order_fn = None


def test_order_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("DSD_GPU_TILE_ORDER", "sideways")
    with pytest.raises(gpu.GpuUnavailable, match="DSD_GPU_TILE_ORDER"):
        gpu.GpuDecoder(cache_dir=str(tmp_path))
    for value in ("off", "cost"):
        monkeypatch.setenv("DSD_GPU_TILE_ORDER", value)
        try:
            dec = gpu.GpuDecoder(cache_dir=str(tmp_path))
        except gpu.GpuUnavailable as exc:
            pytest.skip(f"no Vulkan device: {exc}")
        try:
            assert dec.tile_order == value
        finally:
            dec.close()
    monkeypatch.delenv("DSD_GPU_TILE_ORDER")
    dec = gpu.GpuDecoder(cache_dir=str(tmp_path))
    try:
        assert dec.tile_order == "cost"
    finally:
        dec.close()
