"""The public shape of dsd.codec: exports, the error hierarchy, buffer types, the uniform
Format layer (numbers shared with the wire protocol) and the Zstandard module."""

from __future__ import annotations

import array
import mmap
import re
from pathlib import Path

import pytest
import zstandard

import dsd.codec
from dsd.codec import (
    CodecError,
    CorruptDataError,
    Format,
    OutputTooSmallError,
    detect_format,
    gdeflate,
    zstd,
)
from test_gdeflate_roundtrip import make_data

DATA = make_data("mixed", 200_000, 5)
ROOT = Path(__file__).resolve().parent.parent


def test_exports() -> None:
    """The package re-exports exactly its public names."""
    assert set(dsd.codec.__all__) == {
        "CodecError", "CorruptDataError", "OutputTooSmallError", "Format", "detect_format",
        "compress", "decompress", "decompress_into", "uncompressed_size", "gdeflate", "zstd",
    }
    assert issubclass(CorruptDataError, CodecError) and issubclass(OutputTooSmallError, CodecError)


def test_format_numbers_match_wire_header() -> None:
    """Format values are the wire protocol's enum dsd_compression (native/dsd_wire.h)."""
    text = (ROOT / "native" / "dsd_wire.h").read_text()
    wire = {m[0]: int(m[1]) for m in re.findall(r"DSD_COMPRESSION_(\w+) = (\d+)", text)}
    assert wire == {f.name: f.value for f in Format}


@pytest.mark.parametrize(
    "make",
    [bytes, bytearray, memoryview, lambda b: array.array("B", b), lambda b: memoryview(bytearray(b)).cast("B")],
    ids=["bytes", "bytearray", "memoryview", "array", "cast"],
)
def test_any_buffer_type_in_and_out(make) -> None:
    """Inputs and outputs may be any buffer-protocol object."""
    packed = gdeflate.compress(make(DATA))
    assert gdeflate.decompress(make(packed)) == DATA
    for out in (bytearray(len(DATA)), array.array("B", bytes(len(DATA))), memoryview(bytearray(len(DATA)))):
        assert gdeflate.decompress_into(make(packed), out) == len(DATA)
        assert bytes(out) == DATA


def test_mmap_and_numpy_buffers(tmp_path: Path) -> None:
    """mmap input/output and (when installed) numpy arrays."""
    packed = gdeflate.compress(DATA)
    src = tmp_path / "in.gdef"
    src.write_bytes(packed)
    with src.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert gdeflate.decompress(mm) == DATA
    out = mmap.mmap(-1, len(DATA))
    assert gdeflate.decompress_into(packed, out) == len(DATA)
    assert out[:] == DATA
    out.close()
    np = pytest.importorskip("numpy")
    arr = np.zeros(len(DATA), dtype=np.uint8)
    assert gdeflate.decompress_into(np.frombuffer(packed, dtype=np.uint8), arr) == len(DATA)
    assert arr.tobytes() == DATA


def test_detect_format() -> None:
    """Magic bytes pick the format; anything else is NONE."""
    assert detect_format(gdeflate.compress(DATA)) is Format.GDEFLATE
    assert detect_format(zstd.compress(DATA)) is Format.ZSTD
    assert detect_format(b"plain text") is Format.NONE
    assert detect_format(b"") is Format.NONE


@pytest.mark.parametrize("fmt", list(Format))
def test_uniform_layer_round_trip(fmt: Format) -> None:
    """compress / uncompressed_size / decompress / decompress_into work alike for each format."""
    packed = dsd.codec.compress(fmt, DATA)
    assert dsd.codec.uncompressed_size(fmt, packed) == len(DATA)
    assert dsd.codec.decompress(fmt, packed) == DATA
    out = bytearray(len(DATA) + 10)
    assert dsd.codec.decompress_into(fmt, packed, out) == len(DATA)
    assert out[: len(DATA)] == DATA
    with pytest.raises(OutputTooSmallError):
        dsd.codec.decompress_into(fmt, packed, bytearray(len(DATA) - 1))


def test_uniform_layer_accepts_wire_numbers() -> None:
    """Plain ints from a request record work; unknown numbers are a CodecError."""
    assert dsd.codec.decompress(1, dsd.codec.compress(1, b"abc" * 100)) == b"abc" * 100
    with pytest.raises(CodecError):
        dsd.codec.compress(7, b"x")


def test_zstd_one_frame_rules() -> None:
    """One request = one frame: trailing bytes and truncation are CorruptDataError."""
    packed = zstd.compress(DATA, level=5)
    assert zstd.uncompressed_size(packed) == len(DATA)
    assert zstd.decompress(packed) == DATA
    with pytest.raises(CorruptDataError, match="trailing"):
        zstd.decompress(packed + packed)
    with pytest.raises(CorruptDataError):
        zstd.decompress(packed[:-5])
    with pytest.raises(CorruptDataError):
        zstd.decompress(b"\x28\xb5\x2f\xfd" + b"\xff" * 20)
    with pytest.raises(CorruptDataError):
        zstd.decompress(b"nope")


def test_zstd_without_content_size_needs_a_size() -> None:
    """A frame without a content size decodes only with an explicit size (or into a buffer)."""
    packed = zstandard.ZstdCompressor(write_content_size=False).compress(DATA)
    assert zstd.uncompressed_size(packed) is None
    with pytest.raises(CodecError, match="size"):
        zstd.decompress(packed)
    assert zstd.decompress(packed, size=len(DATA)) == DATA
    with pytest.raises(CorruptDataError):
        zstd.decompress(packed, size=len(DATA) - 1)
    out = bytearray(len(DATA))
    assert zstd.decompress_into(packed, out) == len(DATA) and out == DATA
    with pytest.raises(OutputTooSmallError):
        zstd.decompress_into(packed, bytearray(100))


def test_zstd_empty_and_threads() -> None:
    """Empty payloads and multi-threaded compression."""
    assert zstd.decompress(zstd.compress(b"")) == b""
    assert zstd.decompress_into(zstd.compress(b""), bytearray()) == 0
    big = make_data("text", 3_000_000, 1)
    assert zstd.decompress(zstd.compress(big, threads=2)) == big
    with pytest.raises(ValueError):
        zstd.compress(b"x", level=99)
    with pytest.raises(ValueError):
        zstd.compress(b"x", threads=-2)


def test_stream_info_from_header_and_table_only() -> None:
    """stream_info(prefix, total_size=N) validates tile ranges without the tile bytes."""
    packed = gdeflate.compress(DATA)
    info = gdeflate.stream_info(packed)
    prefix = packed[: 8 + 4 * info.num_tiles]
    assert gdeflate.stream_info(prefix, total_size=len(packed)) == info
    with pytest.raises(CorruptDataError):
        gdeflate.stream_info(prefix, total_size=len(packed) - 1)
    with pytest.raises(CorruptDataError):
        gdeflate.stream_info(prefix[:-1], total_size=len(packed))
    assert gdeflate.header(len(DATA)) == packed[:8]
    assert gdeflate.compress_bound(len(DATA)) >= len(packed)
