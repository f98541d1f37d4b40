"""Round trips through our encoder and decoder over sizes 0..4 tiles (plus odd and tile-boundary
sizes), every level, and random / zero / repetitive / text data."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsd.codec import gdeflate

TILE = gdeflate.TILE_SIZE
WORDS = b"the quick brown fox tile stream decode buffer lane refill huffman window match literal".split()


def make_data(kind: str, size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if kind == "random":
        return rng.randbytes(size)
    if kind == "zero":
        return bytes(size)
    if kind == "repetitive":
        pattern = rng.randbytes(rng.randint(1, 40))
        return (pattern * (size // len(pattern) + 1))[:size]
    if kind == "text":
        out = bytearray()
        while len(out) < size:
            out += rng.choice(WORDS) + (b"\n" if rng.random() < 0.1 else b" ")
        return bytes(out[:size])
    # mixed: runs of the kinds above
    out = bytearray()
    while len(out) < size:
        out += make_data(rng.choice(["random", "zero", "repetitive", "text"]), rng.randint(1, 20000), rng.random())
    return bytes(out[:size])


KINDS = ["random", "zero", "repetitive", "text", "mixed"]
BOUNDARY_SIZES = [0, 1, 2, 3, 4, 31, 32, 33, 257, 4095, TILE - 1, TILE, TILE + 1, 2 * TILE, 3 * TILE - 1, 4 * TILE]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.one_of(st.sampled_from(BOUNDARY_SIZES), st.integers(0, 4 * TILE)),
    kind=st.sampled_from(KINDS),
    level=st.integers(0, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip(size: int, kind: str, level: int, seed: int) -> None:
    """decompress(compress(x)) == x, the header declares len(x), tiles are word-aligned."""
    data = make_data(kind, size, seed)
    packed = gdeflate.compress(data, level=level, threads=2)
    assert gdeflate.uncompressed_size(packed) == len(data)
    assert len(packed) % 4 == 0
    assert gdeflate.decompress(packed, threads=2) == data


@pytest.mark.parametrize("level", range(13))
@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_boundary_sizes_every_level(level: int, size: int) -> None:
    """Tile-boundary sizes at every level, mixed data; decode with 1 thread and all threads."""
    data = make_data("mixed", size, size * 13 + level)
    packed = gdeflate.compress(data, level=level)
    assert gdeflate.decompress(packed, threads=1) == data
    out = bytearray(len(data) + 7)
    assert gdeflate.decompress_into(packed, out, threads=0) == len(data)
    assert out[: len(data)] == data


def test_empty_input_convention() -> None:
    """Empty payload <-> the 8-byte header with numTiles = 0 and tileSizeIdx = 1."""
    assert gdeflate.compress(b"") == bytes.fromhex("04fb000001000000")
    assert gdeflate.decompress(bytes.fromhex("04fb000001000000")) == b""
    assert gdeflate.decompress_into(bytes.fromhex("04fb000001000000"), bytearray()) == 0
    assert gdeflate.stream_info(gdeflate.compress(b"")).num_tiles == 0


@pytest.mark.parametrize("level", [1, 6, 9, 12])
def test_thread_count_does_not_change_output(level: int) -> None:
    """Encoding is deterministic whatever the number of threads."""
    data = make_data("mixed", 5 * TILE + 123, 7)
    outs = {gdeflate.compress(data, level=level, threads=t) for t in (1, 2, 5, 0)}
    assert len(outs) == 1


def test_levels_trade_size() -> None:
    """Higher levels are not worse than stored, and 12 beats 1 on text."""
    data = make_data("text", 3 * TILE, 3)
    sizes = [len(gdeflate.compress(data, level=lv)) for lv in range(13)]
    assert sizes[12] < sizes[1] < sizes[0]
    assert all(s <= sizes[0] for s in sizes)


def test_random_data_expands_little() -> None:
    """Incompressible data falls back to stored blocks (about 136 bytes per tile)."""
    data = make_data("random", 4 * TILE, 1)
    packed = gdeflate.compress(data, level=9)
    assert len(packed) <= len(data) + 4 * 200 + 24
