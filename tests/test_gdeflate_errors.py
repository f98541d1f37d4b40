"""Hostile and broken input: every failure is a CodecError with a clear message, never a crash,
an over-read or a hang; output buffers that are too small are reported, not overrun."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsd.codec import CodecError, CorruptDataError, OutputTooSmallError, gdeflate
from test_gdeflate_roundtrip import make_data

TILE = gdeflate.TILE_SIZE
DATA = make_data("mixed", 3 * TILE + 999, 42)
PACKED = gdeflate.compress(DATA, level=6)


def test_every_truncation_is_rejected() -> None:
    """Cutting a stream anywhere gives CorruptDataError (the table pins the exact length)."""
    cuts = list(range(0, 64)) + list(range(64, len(PACKED), 997)) + [len(PACKED) - 1]
    for cut in cuts:
        with pytest.raises(CorruptDataError):
            gdeflate.decompress(PACKED[:cut])


def test_trailing_bytes_rejected() -> None:
    """A stream must end where its last tile ends (one request = one stream)."""
    with pytest.raises(CorruptDataError, match="trailing"):
        gdeflate.decompress(PACKED + b"\0\0\0\0")


def test_huge_num_tiles_is_checked_before_reading_the_table() -> None:
    """numTiles = 65535 in a tiny buffer: rejected from the header, the table is not read."""
    bad = struct.pack("<BBHI", 4, 0xFB, 65535, 1) + b"\0" * 8
    with pytest.raises(CorruptDataError, match="tile table"):
        gdeflate.decompress(bad)


@pytest.mark.parametrize("entry,value", [(1, 0x7FFFFF00), (2, 1), (0, 0xFFFFFFFF), (3, len(PACKED))])
def test_table_entries_out_of_range(entry: int, value: int) -> None:
    """Offsets beyond the data, non-monotonic offsets and a huge last-tile size are rejected."""
    bad = bytearray(PACKED)
    struct.pack_into("<I", bad, 8 + 4 * entry, value)
    with pytest.raises(CorruptDataError):
        gdeflate.decompress(bytes(bad))


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda b: b.__setitem__(0, 5), "codec id"),
        (lambda b: b.__setitem__(1, 0), "magic"),
        (lambda b: struct.pack_into("<I", b, 4, 2 | (999 << 2)), "tile size index"),
        (lambda b: struct.pack_into("<I", b, 4, 1 | (999 << 2) | (1 << 20)), "reserved"),
        (lambda b: struct.pack_into("<I", b, 4, 1 | (0x3FFFF << 2)), "last tile size"),
    ],
)
def test_header_fields_validated(mutate, message: str) -> None:
    """Codec id, magic, tileSizeIdx, reserved bits and lastTileSize are all checked."""
    bad = bytearray(PACKED)
    mutate(bad)
    with pytest.raises(CorruptDataError, match=message):
        gdeflate.decompress(bytes(bad))


def test_empty_stream_must_be_exactly_the_header() -> None:
    """numTiles = 0 with a last-tile size or extra bytes is corrupt."""
    with pytest.raises(CorruptDataError):
        gdeflate.decompress(struct.pack("<BBHI", 4, 0xFB, 0, 1 | (5 << 2)))
    with pytest.raises(CorruptDataError):
        gdeflate.decompress(struct.pack("<BBHI", 4, 0xFB, 0, 1) + b"x")
    with pytest.raises(CorruptDataError):
        gdeflate.decompress(b"\x04\xfb\x00")


def test_short_output_buffer() -> None:
    """decompress_into refuses a buffer one byte short, names both sizes, writes nothing."""
    out = bytearray(len(DATA) - 1)
    with pytest.raises(OutputTooSmallError) as info:
        gdeflate.decompress_into(PACKED, out)
    assert info.value.needed == len(DATA) and info.value.available == len(DATA) - 1
    assert not any(out)


def test_corrupt_tile_reports_its_index() -> None:
    """Garbage in tile 2 of 4 -> CorruptDataError with tile == 2, whatever the thread count."""
    info = gdeflate.stream_info(PACKED)
    table = struct.unpack_from(f"<{info.num_tiles}I", PACKED, 8)
    start = 8 + 4 * info.num_tiles + table[2]
    bad = bytearray(PACKED)
    bad[start : start + 4] = b"\xff\xff\xff\xff"  # BFINAL=1, BTYPE=3 (reserved)
    for threads in (1, 4):
        with pytest.raises(CorruptDataError) as exc:
            gdeflate.decompress(bytes(bad), threads=threads)
        assert exc.value.tile == 2


def test_bad_arguments() -> None:
    """Wrong levels, thread counts and non-buffers are ValueError/TypeError, not CodecError."""
    with pytest.raises(ValueError):
        gdeflate.compress(b"x", level=13)
    with pytest.raises(ValueError):
        gdeflate.compress(b"x", level=-1)
    with pytest.raises(ValueError):
        gdeflate.decompress(PACKED, threads=-1)
    with pytest.raises(TypeError):
        gdeflate.decompress("not bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gdeflate.decompress_into(PACKED, bytes(len(DATA)))  # read-only output


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_streams_never_crash(data: st.DataObject) -> None:
    """Random byte edits in the tile data: either a CodecError or output of the declared size."""
    bad = bytearray(PACKED)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(8, len(bad) - 1))
        bad[pos] = data.draw(st.integers(0, 255))
    try:
        out = gdeflate.decompress(bytes(bad), threads=1)
    except CodecError:
        return
    assert len(out) == gdeflate.uncompressed_size(bytes(bad))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_random_tiles_never_crash(tile: bytes) -> None:
    """Arbitrary bytes as a tile's data: a CodecError or exactly the declared size."""
    stream = struct.pack("<BBHII", 4, 0xFB, 1, 1 | (100 << 2), len(tile)) + tile
    try:
        out = gdeflate.decompress(stream)
    except CodecError:
        return
    assert len(out) == 100
