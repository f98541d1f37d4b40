"""Codecs of dsd: GDeflate (DirectStorage tile streams) and Zstandard, behind one small API.

This layer sits between the C core (``dsd._native``, which holds the GDeflate codec) and its
users (the daemon's workers, the ``dsd compress``/``dsd decompress`` commands, benchmarks). Each
format has a module with the same functions -- ``compress``, ``decompress``, ``decompress_into``
and ``uncompressed_size`` -- and :class:`Format` plus the functions here let callers treat the
formats alike (the numbers of :class:`Format` are the wire protocol's, native/dsd_wire.h).
Every failure raises :class:`CodecError` or one of its subclasses.
"""

from dsd.codec._errors import CodecError, CorruptDataError, OutputTooSmallError
from dsd.codec._formats import Format, compress, decompress, decompress_into, detect_format, uncompressed_size
from dsd.codec import gdeflate, zstd

__all__ = [
    "CodecError",
    "CorruptDataError",
    "OutputTooSmallError",
    "Format",
    "detect_format",
    "compress",
    "decompress",
    "decompress_into",
    "uncompressed_size",
    "gdeflate",
    "zstd",
]
