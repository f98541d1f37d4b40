"""Whole-file compression and decompression in bounded chunks, with progress callbacks.

Used by ``dsd compress``/``dsd decompress``. A GDeflate file is one tile stream: chunks of tiles
are compressed as separate streams and their tiles spliced into one container (tiles are
independent, so the result is byte-identical to one big call); decoding runs over sub-streams of
the same tiles. Zstandard files are one frame, streamed through ``zstandard``. Memory stays
bounded by the chunk size whatever the file size.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import BinaryIO

import zstandard

from dsd.codec import gdeflate, zstd
from dsd.codec._errors import CodecError, CorruptDataError
from dsd.codec._formats import Format, detect_format

__all__ = ["compress_file", "decompress_file", "CHUNK_TILES"]

CHUNK_TILES = 128  # 8 MiB of payload per native call: bounded memory, frequent progress
CHUNK_BYTES = CHUNK_TILES * gdeflate.TILE_SIZE
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def _noop(_done: int, _total: int) -> None:
    pass


def _check_paths(src: str, dst: str) -> None:
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise CodecError(f"input and output are the same file: {dst}")


def _read_exact(fh: BinaryIO, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise CorruptDataError(f"file ends early ({what})")
    return data


def compress_file(
    src: str, dst: str, fmt: Format, *, level: int | None = None, threads: int = 0, progress: Progress = _noop
) -> tuple[int, int]:
    """Compress file ``src`` into ``dst``; returns (input bytes, output bytes)."""
    _check_paths(src, dst)
    if fmt is Format.GDEFLATE:
        level = gdeflate.LEVEL_DEFAULT if level is None else level
        gdeflate.compress(b"", level=level, threads=threads)  # validates the options before any I/O
    elif fmt is Format.ZSTD:
        level = zstd.LEVEL_DEFAULT if level is None else level
        zstd.compress(b"", level=level, threads=threads)
    else:
        raise CodecError(f"cannot compress to format {fmt!r}")
    with open(src, "rb") as fin:
        size = os.fstat(fin.fileno()).st_size
        with open(dst, "wb") as out:
            if fmt is Format.GDEFLATE:
                written = _gdeflate_compress(fin, size, out, level, threads, progress)
            else:
                written = _zstd_compress(fin, size, out, level, threads, progress)
    return size, written


def _gdeflate_compress(fin: BinaryIO, n: int, out: BinaryIO, level: int, threads: int, progress: Progress) -> int:
    if n > 65535 * gdeflate.TILE_SIZE:
        raise CodecError(f"GDeflate: {n} bytes exceed one stream's maximum of {65535 * gdeflate.TILE_SIZE} bytes")
    tiles = -(-n // gdeflate.TILE_SIZE)
    table_end = gdeflate.HEADER_SIZE + 4 * tiles
    out.seek(table_end)
    sizes: list[int] = []
    done = 0
    buf = bytearray(min(CHUNK_BYTES, n))
    while done < n:
        got = fin.readinto(buf)
        if not got:
            raise CodecError("input file shrank while being compressed")
        part = gdeflate.compress(memoryview(buf)[:got], level=level, threads=threads)
        k = struct.unpack_from("<H", part, 2)[0]
        entries = struct.unpack_from(f"<{k}I", part, gdeflate.HEADER_SIZE)
        starts = [0, *entries[1:]]  # entry[0] is the last tile's size, the others are offsets
        sizes.extend(starts[i + 1] - starts[i] for i in range(k - 1))
        sizes.append(entries[0])
        out.write(memoryview(part)[gdeflate.HEADER_SIZE + 4 * k :])
        done += got
        progress(done, n)
    table = [sizes[-1]] if sizes else []
    off = 0
    for s in sizes[:-1]:
        off += s
        table.append(off)
    out.seek(0)
    out.write(gdeflate.header(n) + struct.pack(f"<{tiles}I", *table))
    return table_end + sum(sizes)


def _zstd_compress(fin: BinaryIO, n: int, out: BinaryIO, level: int, threads: int, progress: Progress) -> int:
    workers = -1 if threads == 0 else (0 if threads == 1 else threads)
    cctx = zstandard.ZstdCompressor(level=level, threads=workers, write_content_size=True)
    with cctx.stream_writer(out, size=n, closefd=False) as writer:
        done = 0
        while True:
            chunk = fin.read(CHUNK_BYTES)
            if not chunk:
                break
            writer.write(chunk)
            done += len(chunk)
            progress(done, n)
    if done != n:
        raise CodecError("input file changed size while being compressed")
    return out.tell()


def decompress_file(src: str, dst: str, *, threads: int = 0, progress: Progress = _noop) -> tuple[Format, int, int]:
    """Decode file ``src`` (format from its magic bytes) into ``dst``; returns (format, in, out)."""
    _check_paths(src, dst)
    with open(src, "rb") as fin:
        size = os.fstat(fin.fileno()).st_size
        fmt = detect_format(fin.read(4))
        fin.seek(0)
        if fmt is Format.NONE:
            raise CorruptDataError("not a GDeflate or Zstandard file (unknown magic bytes)")
        with open(dst, "wb") as out:
            if fmt is Format.GDEFLATE:
                written = _gdeflate_decompress(fin, size, out, threads, progress)
            else:
                written = _zstd_decompress(fin, size, out, progress)
    return fmt, size, written


def _gdeflate_decompress(fin: BinaryIO, size: int, out: BinaryIO, threads: int, progress: Progress) -> int:
    head = _read_exact(fin, gdeflate.HEADER_SIZE, "GDeflate header") if size >= gdeflate.HEADER_SIZE else fin.read()
    n = struct.unpack_from("<H", head, 2)[0] if len(head) >= 4 else 0
    table = fin.read(4 * n)
    info = gdeflate.stream_info(head + table, total_size=size)  # every tile range checked against the file
    if n == 0:
        gdeflate.decompress(head + table + fin.read())
        return 0
    entries = struct.unpack_from(f"<{n}I", table)
    starts = [0, *entries[1:]]
    ends = [*entries[1:], starts[-1] + entries[0]]
    buf = bytearray(CHUNK_BYTES)
    done = 0
    for first in range(0, n, CHUNK_TILES):
        last = min(first + CHUNK_TILES, n)  # exclusive
        k = last - first
        payload = (k - 1) * gdeflate.TILE_SIZE + (info.last_tile_size if last == n else gdeflate.TILE_SIZE)
        rel = [s - starts[first] for s in starts[first + 1 : last]]
        sub_table = struct.pack(f"<{k}I", ends[last - 1] - starts[last - 1], *rel)
        tiles = _read_exact(fin, ends[last - 1] - starts[first], f"tiles {first}..{last - 1}")
        try:
            got = gdeflate.decompress_into(gdeflate.header(payload) + sub_table + tiles, buf, threads=threads)
        except CodecError as exc:
            if exc.tile is not None:  # name the tile of the whole file, not of the chunk
                raise CorruptDataError(
                    str(exc).replace(f"(tile {exc.tile})", f"(tile {exc.tile + first})"),
                    format="gdeflate",
                    tile=exc.tile + first,
                ) from None
            raise
        out.write(memoryview(buf)[:got])
        done += got
        progress(done, info.uncompressed_size)
    return done


def _zstd_frame_length(fin: BinaryIO, size: int) -> int:
    def read_at(pos: int, n: int) -> bytes:
        fin.seek(pos)
        return fin.read(n)

    return zstd.frame_length(read_at, size)


def _zstd_decompress(fin: BinaryIO, size: int, out: BinaryIO, progress: Progress) -> int:
    if _zstd_frame_length(fin, size) != size:
        raise CorruptDataError("Zstandard: trailing bytes after the frame (one request = one frame)", format="zstd")
    fin.seek(0)
    declared = zstd.uncompressed_size(fin.read(18))
    fin.seek(0)
    done = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(fin, read_across_frames=False, closefd=False) as reader:
            while True:
                chunk = reader.read(CHUNK_BYTES)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if declared is not None and done > declared:
                    break
                progress(done, declared if declared is not None else done)
    except zstandard.ZstdError as exc:
        raise CorruptDataError(f"Zstandard: {exc}", format="zstd") from None
    if declared is not None and done != declared:
        raise CorruptDataError(f"Zstandard: frame decoded to {done} bytes, header declares {declared}", format="zstd")
    return done
