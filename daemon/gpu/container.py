"""Host-side checks of the GDeflate tile-stream container (docs/gdeflate-format.md §1).

Only the 8-byte header and the table's size are checked here, O(1) per request; the tile
offsets are checked by the shader against the stream's bounds as each tile is taken.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .errors import E_CONTAINER, E_SIZE_MISMATCH, GpuDecodeError

CODEC_ID = 4
TILE_BYTES = 65536
MAX_TILES = 65535
_HEADER = struct.Struct("<BBHI")  # codec id, magic, tile count, packed sizes (one unpack per request)


class StreamPlan(NamedTuple):
    """One request's layout (a tuple: built once per request on the batch's hot path)."""

    num_tiles: int
    last_size: int  # decoded bytes of the last tile (1..65536); 0 for an empty stream
    out_len: int


def plan_stream(data: memoryview, expected_size: int | None) -> StreamPlan:
    """Parses the header of one tile stream; raises GpuDecodeError when it is malformed."""
    n = len(data)
    if n < 8:
        raise GpuDecodeError(E_CONTAINER, detail=f"{n} bytes is shorter than the 8-byte header")
    codec, magic, num_tiles, packed = _HEADER.unpack_from(data)
    if codec != CODEC_ID or magic != codec ^ 0xFF:
        raise GpuDecodeError(E_CONTAINER, detail=f"codec id {codec} / magic 0x{magic:02x} is not GDeflate")
    size_idx = packed & 3
    last = (packed >> 2) & 0x3FFFF
    # The empty-payload convention (format doc §1) is all zeros after the magic; accept idx 0 there.
    if size_idx != 1 and not (num_tiles == 0 and size_idx == 0):
        raise GpuDecodeError(E_CONTAINER, detail=f"tile size index {size_idx} (only 1 = 64 KiB exists)")
    if packed >> 20:
        raise GpuDecodeError(E_CONTAINER, detail="reserved header bits are set")
    if last > TILE_BYTES:
        raise GpuDecodeError(E_CONTAINER, detail=f"last tile size {last} exceeds 64 KiB")
    if num_tiles == 0:
        if last != 0:
            raise GpuDecodeError(E_CONTAINER, detail="empty stream with a last-tile size")
        out_len = 0
        last_size = 0
    else:
        if n < 8 + 4 * num_tiles:
            raise GpuDecodeError(E_CONTAINER, detail=f"{num_tiles}-entry tile table needs {8 + 4 * num_tiles} bytes, stream has {n}")
        last_size = last or TILE_BYTES
        out_len = (num_tiles - 1) * TILE_BYTES + last_size
    if expected_size is not None and expected_size != out_len:
        raise GpuDecodeError(E_SIZE_MISMATCH, detail=f"stream holds {out_len} bytes, request says {expected_size}")
    return StreamPlan(num_tiles, last_size, out_len)
