"""Errors of the GPU decode layer.

`GpuError` is the root. `GpuUnavailable` means no usable Vulkan device, driver feature or
shader (the caller falls back to the CPU codec). `GpuDecodeError` describes one request whose
data was bad; it is returned in that request's slot of a batch result, never raised for the
batch, so the other requests of the batch still complete.
"""

from __future__ import annotations

# Codes written by the shader (shaders/gdeflate_decode.glsl) or by the host-side container check.
E_CONTAINER = 1
E_TILE_RANGE = 2
E_BLOCK_TYPE = 3
E_BAD_CODE_LENGTHS = 4
E_BAD_SYMBOL = 5
E_DISTANCE = 6
E_OUTPUT_OVERFLOW = 7
E_OUTPUT_SHORT = 8
E_OVERREAD = 9
E_BUDGET = 10
E_SIZE_MISMATCH = 11

MESSAGES = {
    E_CONTAINER: "invalid GDeflate container header or tile table",
    E_TILE_RANGE: "tile offsets out of order or outside the stream",
    E_BLOCK_TYPE: "reserved block type 3",
    E_BAD_CODE_LENGTHS: "invalid Huffman code lengths",
    E_BAD_SYMBOL: "invalid Huffman code or symbol",
    E_DISTANCE: "match distance reaches before the start of the tile",
    E_OUTPUT_OVERFLOW: "tile decodes to more bytes than its declared size",
    E_OUTPUT_SHORT: "tile decodes to fewer bytes than its declared size",
    E_OVERREAD: "tile bitstream runs past the end of its data",
    E_BUDGET: "tile exceeded its decode step budget",
    E_SIZE_MISMATCH: "stream's decoded size differs from the request's size",
}


class GpuError(Exception):
    """Root of the GPU decode layer's exceptions."""


class GpuUnavailable(GpuError):
    """No usable Vulkan device, feature or shader; use the CPU codec instead."""


class GpuDecodeError(GpuError):
    """One request's compressed data is bad. `code` is one of the E_* values, `tile` the
    failing tile (or None when the container itself is bad)."""

    def __init__(self, code: int, tile: int | None = None, detail: str = "") -> None:
        self.code = code
        self.tile = tile
        self.detail = detail
        text = MESSAGES.get(code, f"decode error {code}")
        if tile is not None:
            text += f" (tile {tile})"
        if detail:
            text += f": {detail}"
        super().__init__(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GpuDecodeError) and (self.code, self.tile) == (other.code, other.tile)

    def __hash__(self) -> int:
        return hash((self.code, self.tile))
