"""The exceptions of dsd.codec: one root, two named failures."""

from __future__ import annotations


class CodecError(Exception):
    """Root of every codec failure. ``format`` names the codec; ``tile`` is the failing GDeflate
    tile index when one is known (``None`` for container-level or non-tiled failures)."""

    def __init__(self, message: str, *, format: str | None = None, tile: int | None = None) -> None:
        super().__init__(message)
        self.format = format
        self.tile = tile


class CorruptDataError(CodecError):
    """The compressed data is corrupt, truncated or not in the expected format."""


class OutputTooSmallError(CodecError):
    """The output buffer cannot hold the decompressed data."""

    def __init__(self, message: str, *, needed: int, available: int, format: str | None = None) -> None:
        super().__init__(message, format=format)
        self.needed = needed
        self.available = available
