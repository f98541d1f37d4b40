"""GDeflate tile streams (the DirectStorage format), implemented in C (native/gdeflate.h).

A stream is an 8-byte header, a table with one u32 per 64 KiB tile and the tiles, each an
independent 32-lane DEFLATE64-style bitstream; decoding and encoding run tile-parallel on
``threads`` threads (0 = every core) with the GIL released. Input may be any buffer-protocol
object (bytes, bytearray, memoryview, mmap, numpy arrays).

Empty payloads: ``compress(b"")`` gives the 8-byte header ``04 FB 00 00 01 00 00 00``
(numTiles = 0) and only that header decodes to ``b""``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from dsd import _native
from dsd.codec._errors import CodecError, CorruptDataError, OutputTooSmallError

__all__ = [
    "LEVEL_FASTEST",
    "LEVEL_DEFAULT",
    "LEVEL_BEST_RATIO",
    "MIN_LEVEL",
    "MAX_LEVEL",
    "TILE_SIZE",
    "MAGIC",
    "HEADER_SIZE",
    "header",
    "StreamInfo",
    "compress",
    "compress_bound",
    "decompress",
    "decompress_into",
    "stream_info",
    "uncompressed_size",
]

LEVEL_FASTEST = 1  # DSTORAGE_COMPRESSION_FASTEST
LEVEL_DEFAULT = 9  # DSTORAGE_COMPRESSION_DEFAULT
LEVEL_BEST_RATIO = 12  # DSTORAGE_COMPRESSION_BEST_RATIO
MIN_LEVEL = 0
MAX_LEVEL = int(_native.GDEFLATE_MAX_LEVEL)
TILE_SIZE = int(_native.GDEFLATE_TILE_SIZE)
MAGIC = b"\x04\xfb"
HEADER_SIZE = 8


@dataclass(frozen=True)
class StreamInfo:
    """What a stream's header and tile table say (validated against the stream's length)."""

    num_tiles: int
    uncompressed_size: int
    compressed_size: int
    last_tile_size: int


def _translate(exc: Exception, available: int | None = None, needed: int | None = None) -> CodecError:
    code, tile, reason = exc.args
    tile = None if tile < 0 else int(tile)
    where = f" (tile {tile})" if tile is not None else ""
    if code == _native.GDEFLATE_INSUFFICIENT_SPACE:
        return OutputTooSmallError(
            f"GDeflate: output buffer of {available} bytes is too small for {needed} bytes",
            needed=needed if needed is not None else -1,
            available=available if available is not None else -1,
            format="gdeflate",
        )
    if code in (_native.GDEFLATE_BAD_DATA, _native.GDEFLATE_SHORT_OUTPUT):
        return CorruptDataError(f"GDeflate: {reason}{where}", format="gdeflate", tile=tile)
    return CodecError(f"GDeflate: {reason}{where}", format="gdeflate", tile=tile)


def _check_threads(threads: int) -> int:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise ValueError(f"threads must be an int >= 0 (0 = all cores), not {threads!r}")
    return threads


def header(size: int) -> bytes:
    """The 8-byte container header of a ``size``-byte payload (numTiles = 0 when empty)."""
    if not 0 <= size <= 65535 * TILE_SIZE:
        raise ValueError(f"{size} bytes do not fit one GDeflate stream")
    tiles = -(-size // TILE_SIZE)
    return struct.pack("<BBHI", 4, 0xFB, tiles, 1 | ((size % TILE_SIZE) << 2))


def stream_info(data: Any, *, total_size: int | None = None) -> StreamInfo:
    """Parse and validate the header and tile table; raises CorruptDataError if they are bad.

    ``data`` is normally the whole stream. With ``total_size`` it may be just the header and
    table (e.g. read from the front of a file): tile ranges are then checked against
    ``total_size`` bytes without the tiles being present."""
    try:
        if total_size is None:
            tiles, size, csize, last = _native.gdeflate_stream_info(data)
        else:
            tiles, size, csize, last = _native.gdeflate_stream_info(data, total_size)
    except _native.GDeflateError as exc:
        raise _translate(exc) from None
    return StreamInfo(tiles, size, csize, last)


def uncompressed_size(data: Any) -> int:
    """The decoded size a stream declares (from its header)."""
    return stream_info(data).uncompressed_size


def compress_bound(size: int) -> int:
    """Worst-case compressed size of ``size`` input bytes."""
    bound = int(_native.gdeflate_compress_bound(size))
    if bound == 0:
        raise ValueError(f"{size} bytes exceed the GDeflate maximum of {65535 * TILE_SIZE} bytes")
    return bound


def compress(data: Any, *, level: int = LEVEL_DEFAULT, threads: int = 0) -> bytes:
    """Compress ``data`` into one tile stream at ``level`` (0 = stored ... 12 = best ratio)."""
    if not isinstance(level, int) or isinstance(level, bool) or not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"GDeflate level must be an int in {MIN_LEVEL}..{MAX_LEVEL}, not {level!r}")
    try:
        return _native.gdeflate_compress(data, level, _check_threads(threads))
    except _native.GDeflateError as exc:
        raise _translate(exc) from None


def decompress(data: Any, *, threads: int = 0) -> bytes:
    """Decode a whole tile stream and return the payload."""
    try:
        return _native.gdeflate_decompress(data, _check_threads(threads))
    except _native.GDeflateError as exc:
        raise _translate(exc) from None


def decompress_into(data: Any, out: Any, *, threads: int = 0) -> int:
    """Decode into the writable buffer ``out``; returns the number of bytes written."""
    try:
        return int(_native.gdeflate_decompress_into(data, out, _check_threads(threads)))
    except BufferError as exc:
        raise TypeError(f"decompress_into needs a writable, contiguous output buffer: {exc}") from None
    except _native.GDeflateError as exc:
        if exc.args[0] == _native.GDEFLATE_INSUFFICIENT_SPACE:
            with memoryview(out) as view:
                available = view.nbytes
            raise _translate(exc, available=available, needed=uncompressed_size(data)) from None
        raise _translate(exc) from None
