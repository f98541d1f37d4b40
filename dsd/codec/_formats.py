"""One API over every format, so the daemon and the commands can treat formats alike."""

from __future__ import annotations

import enum
from typing import Any

from dsd.codec import gdeflate, zstd
from dsd.codec._errors import CodecError, OutputTooSmallError

__all__ = ["Format", "detect_format", "compress", "decompress", "decompress_into", "uncompressed_size"]


class Format(enum.IntEnum):
    """Compression formats; the numbers are the wire protocol's (enum dsd_compression)."""

    NONE = 0
    GDEFLATE = 1
    ZSTD = 2


def detect_format(data: Any) -> Format:
    """GDEFLATE or ZSTD from the leading magic bytes; NONE when neither matches."""
    with memoryview(data) as view:
        head = bytes(view[:4]) if view.ndim <= 1 and view.itemsize == 1 else view.cast("B")[:4].tobytes()
    if head[:2] == gdeflate.MAGIC:
        return Format.GDEFLATE
    if head[:4] == zstd.MAGIC:
        return Format.ZSTD
    return Format.NONE


def _format(fmt: Format | int) -> Format:
    try:
        return Format(fmt)
    except ValueError:
        raise CodecError(f"unknown compression format {fmt!r}") from None


def compress(fmt: Format | int, data: Any, *, level: int | None = None, threads: int = 0) -> bytes:
    """Compress ``data`` in ``fmt`` (NONE returns a copy); ``level`` None = the format's default."""
    fmt = _format(fmt)
    if fmt is Format.GDEFLATE:
        return gdeflate.compress(data, level=gdeflate.LEVEL_DEFAULT if level is None else level, threads=threads)
    if fmt is Format.ZSTD:
        return zstd.compress(data, level=zstd.LEVEL_DEFAULT if level is None else level, threads=threads)
    return bytes(data)


def uncompressed_size(fmt: Format | int, data: Any) -> int | None:
    """Decoded size the stream declares (None for a zstd frame without a content size)."""
    fmt = _format(fmt)
    if fmt is Format.GDEFLATE:
        return gdeflate.uncompressed_size(data)
    if fmt is Format.ZSTD:
        return zstd.uncompressed_size(data)
    with memoryview(data) as view:
        return view.nbytes


def decompress(fmt: Format | int, data: Any, *, threads: int = 0) -> bytes:
    fmt = _format(fmt)
    if fmt is Format.GDEFLATE:
        return gdeflate.decompress(data, threads=threads)
    if fmt is Format.ZSTD:
        return zstd.decompress(data, threads=threads)
    return bytes(data)


def decompress_into(fmt: Format | int, data: Any, out: Any, *, threads: int = 0) -> int:
    """Decode ``data`` into ``out``; returns the bytes written (NONE copies)."""
    fmt = _format(fmt)
    if fmt is Format.GDEFLATE:
        return gdeflate.decompress_into(data, out, threads=threads)
    if fmt is Format.ZSTD:
        return zstd.decompress_into(data, out, threads=threads)
    with memoryview(data) as src, memoryview(out) as dest:
        src, dest = src.cast("B"), dest.cast("B")
        if src.nbytes > dest.nbytes:
            raise OutputTooSmallError(
                f"output buffer of {dest.nbytes} bytes is too small for {src.nbytes} bytes",
                needed=src.nbytes,
                available=dest.nbytes,
            )
        dest[: src.nbytes] = src
        return src.nbytes
