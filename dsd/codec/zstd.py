"""Zstandard frames (DirectStorage 1.4's second format) through the ``zstandard`` package.

One request is exactly one zstd frame: trailing bytes after the frame are an error, and so is a
frame that does not declare its content size unless the caller states the size (``size=`` or
the length of the ``decompress_into`` buffer). Same function shapes as :mod:`dsd.codec.gdeflate`;
``threads`` drives multi-threaded compression (0 = every core) and is accepted but unused when
decoding (a single zstd frame decodes on one thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import zstandard

from dsd.codec._errors import CodecError, CorruptDataError, OutputTooSmallError

__all__ = ["frame_length", "MAGIC", "LEVEL_DEFAULT", "MIN_LEVEL", "MAX_LEVEL", "compress", "decompress", "decompress_into", "uncompressed_size"]

MAGIC = b"\x28\xb5\x2f\xfd"
LEVEL_DEFAULT = 3
MIN_LEVEL = -(1 << 17)
MAX_LEVEL = int(zstandard.MAX_COMPRESSION_LEVEL)


def _check_threads(threads: int) -> int:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise ValueError(f"threads must be an int >= 0 (0 = all cores), not {threads!r}")
    return threads


def frame_length(read_at: Callable[[int, int], bytes], size: int) -> int:
    """Bytes the first frame of a ``size``-byte source occupies, from its frame header and block
    headers alone (no decoding). ``read_at(pos, n)`` returns up to n bytes at pos."""
    head = read_at(0, 18)
    if head[:4] != MAGIC:
        raise CorruptDataError("Zstandard: not a zstd frame (bad magic bytes)", format="zstd")
    try:
        pos = zstandard.frame_header_size(head)
    except zstandard.ZstdError as exc:
        raise CorruptDataError(f"Zstandard: bad frame header: {exc}", format="zstd") from None
    has_checksum = bool(head[4] & 0x04)
    while True:
        block = read_at(pos, 3)
        if len(block) < 3:
            raise CorruptDataError("Zstandard: frame is truncated", format="zstd")
        header = block[0] | (block[1] << 8) | (block[2] << 16)
        pos += 3
        last, kind, length = header & 1, (header >> 1) & 3, header >> 3
        if kind == 3:
            raise CorruptDataError("Zstandard: reserved block type", format="zstd")
        pos += 1 if kind == 1 else length
        if pos > size:
            raise CorruptDataError("Zstandard: frame is truncated", format="zstd")
        if last:
            break
    pos += 4 if has_checksum else 0
    if pos > size:
        raise CorruptDataError("Zstandard: frame is truncated", format="zstd")
    return pos


def _frame_length(view: memoryview) -> int:
    return frame_length(lambda pos, n: bytes(view[pos : pos + n]), len(view))


def uncompressed_size(data: Any) -> int | None:
    """The content size the frame header declares, or None when the frame does not say."""
    with memoryview(data) as view:
        if view[:4] != MAGIC:
            raise CorruptDataError("Zstandard: not a zstd frame (bad magic bytes)", format="zstd")
        try:
            size = zstandard.frame_content_size(view)
        except zstandard.ZstdError as exc:
            raise CorruptDataError(f"Zstandard: bad frame header: {exc}", format="zstd") from None
    return None if size < 0 else int(size)


def compress(data: Any, *, level: int = LEVEL_DEFAULT, threads: int = 0) -> bytes:
    """Compress ``data`` into one zstd frame that records its content size."""
    if not isinstance(level, int) or isinstance(level, bool) or not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"Zstandard level must be an int in {MIN_LEVEL}..{MAX_LEVEL}, not {level!r}")
    threads = _check_threads(threads)
    workers = -1 if threads == 0 else (0 if threads == 1 else threads)
    try:
        return zstandard.ZstdCompressor(level=level, threads=workers, write_content_size=True).compress(data)
    except zstandard.ZstdError as exc:  # pragma: no cover - zstd compression of a buffer does not fail
        raise CodecError(f"Zstandard: compression failed: {exc}", format="zstd") from None


def _decode(view: memoryview, size: int) -> bytes:
    if _frame_length(view) != len(view):
        raise CorruptDataError("Zstandard: trailing bytes after the frame (one request = one frame)", format="zstd")
    try:
        out = zstandard.ZstdDecompressor().decompress(view, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise CorruptDataError(f"Zstandard: {exc}", format="zstd") from None
    if len(out) != size:
        raise CorruptDataError(f"Zstandard: frame decoded to {len(out)} bytes, expected {size}", format="zstd")
    return out


def decompress(data: Any, *, threads: int = 0, size: int | None = None) -> bytes:
    """Decode one frame. ``size`` is required when the frame has no content size; when both
    exist they must agree."""
    _check_threads(threads)
    with memoryview(data) as view:
        declared = uncompressed_size(view)
        if declared is None and size is None:
            raise CodecError("Zstandard: frame does not record its content size; pass size=", format="zstd")
        if declared is not None and size is not None and declared != size:
            raise CorruptDataError(f"Zstandard: frame declares {declared} bytes, expected {size}", format="zstd")
        want = declared if declared is not None else size
        assert want is not None
        if want == 0:
            _decode_empty(view)
            return b""
        return _decode(view, want)


def _decode_empty(view: memoryview) -> None:
    if _frame_length(view) != len(view):
        raise CorruptDataError("Zstandard: trailing bytes after the frame (one request = one frame)", format="zstd")
    try:
        out = zstandard.ZstdDecompressor().decompressobj().decompress(view)
    except zstandard.ZstdError as exc:
        raise CorruptDataError(f"Zstandard: {exc}", format="zstd") from None
    if out:
        raise CorruptDataError("Zstandard: frame declares 0 bytes but holds data", format="zstd")


def decompress_into(data: Any, out: Any, *, threads: int = 0) -> int:
    """Decode one frame into the writable buffer ``out``; returns the number of bytes written.
    A frame without a content size may fill at most ``len(out)`` bytes."""
    _check_threads(threads)
    with memoryview(data) as view, memoryview(out) as dest:
        if dest.readonly:
            raise TypeError("decompress_into needs a writable buffer")
        dest = dest.cast("B")
        declared = uncompressed_size(view)
        if declared is not None and declared > dest.nbytes:
            raise OutputTooSmallError(
                f"Zstandard: output buffer of {dest.nbytes} bytes is too small for {declared} bytes",
                needed=declared,
                available=dest.nbytes,
                format="zstd",
            )
        if declared == 0:
            _decode_empty(view)
            return 0
        if declared is None:
            if _frame_length(view) != len(view):
                raise CorruptDataError("Zstandard: trailing bytes after the frame (one request = one frame)", format="zstd")
            try:
                result = zstandard.ZstdDecompressor().decompressobj().decompress(view)
            except zstandard.ZstdError as exc:
                raise CorruptDataError(f"Zstandard: {exc}", format="zstd") from None
            if len(result) > dest.nbytes:
                raise OutputTooSmallError(
                    f"Zstandard: output buffer of {dest.nbytes} bytes is too small for {len(result)} bytes",
                    needed=len(result),
                    available=dest.nbytes,
                    format="zstd",
                )
        else:
            result = _decode(view, declared)
        dest[: len(result)] = result
        return len(result)
