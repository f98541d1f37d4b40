"""The packed fixed-size records carried in BATCH and COMPLETIONS body frames.

Layout version 1, little-endian; native/dsd_wire.h is the C twin of these structs and
docs/protocol.md the byte-for-byte description. Records are packed on the client (which
owns a Python object per request anyway) and parsed in bulk by the daemon's native code.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Iterator

RECORD_LAYOUT_VERSION = 1

REQUEST_RECORD = struct.Struct("<QQQIIQIIIBBBBIHbB")
COMPLETION_RECORD = struct.Struct("<QQIiBB6x")
REQUEST_RECORD_SIZE = REQUEST_RECORD.size
COMPLETION_RECORD_SIZE = COMPLETION_RECORD.size
assert REQUEST_RECORD_SIZE == 64 and COMPLETION_RECORD_SIZE == 32

U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF


class Op(enum.IntEnum):
    READ = 0
    WRITE = 1
    FSYNC = 2      # barrier-like: after every earlier entry, flush file dst_id
    STATUS = 3     # barrier: dst_offset = status array index; completes with the first failure's HRESULT
    SIGNAL = 4     # barrier: dst_offset = fence value
    EVENT = 5      # barrier: dst_offset = event id


BARRIER_OPS = frozenset({Op.FSYNC, Op.STATUS, Op.SIGNAL, Op.EVENT})


class Priority(enum.IntEnum):
    LOW = -1
    NORMAL = 0
    HIGH = 1
    REALTIME = 2


class Compression(enum.IntEnum):
    NONE = 0
    GDEFLATE = 1
    ZSTD = 2


class SourceType(enum.IntEnum):
    FILE = 0
    MEMORY = 1


class Status(enum.IntEnum):
    OK = 0
    FAILED = 1
    CANCELLED = 2


class Reason(enum.IntEnum):
    """Which check failed (native/dsd_wire.h enum dsd_reason)."""

    NONE = 0
    IO = 1
    EOF = 2
    BAD_FILE = 3
    BAD_REGION = 4
    REGION_BOUNDS = 5
    SIZE_MISMATCH = 6
    UNSUPPORTED = 7
    RESERVED = 8
    DECOMPRESS = 9
    TOO_LARGE = 10
    CANCELLED = 11
    SHUTDOWN = 12


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as it travels in a BATCH body frame (64 bytes)."""

    request_id: int
    src_id: int
    src_offset: int
    src_size: int
    dst_id: int
    dst_offset: int
    dst_size: int
    op: Op = Op.READ
    compression: Compression = Compression.NONE
    source_type: SourceType = SourceType.FILE
    uncompressed_size: int = 0
    cancel_tag: int = 0
    name_offset: int = 0
    name_length: int = 0
    level: int = 0
    flags: int = 0
    reserved: int = 0

    def pack_into(self, buffer: bytearray | memoryview, offset: int) -> None:
        REQUEST_RECORD.pack_into(
            buffer,
            offset,
            self.request_id,
            self.cancel_tag,
            self.src_offset,
            self.src_size,
            self.src_id,
            self.dst_offset,
            self.dst_size,
            self.dst_id,
            self.uncompressed_size,
            self.op,
            self.compression,
            self.source_type,
            self.flags,
            self.name_offset,
            self.name_length,
            self.level,
            self.reserved,
        )

    @classmethod
    def unpack_from(cls, buffer: bytes | memoryview, offset: int = 0) -> "RequestRecord":
        (rid, tag, src_off, src_size, src_id, dst_off, dst_size, dst_id, usize, op, comp, stype, flags,
         name_off, name_len, level, reserved) = REQUEST_RECORD.unpack_from(buffer, offset)
        return cls(
            request_id=rid, src_id=src_id, src_offset=src_off, src_size=src_size, dst_id=dst_id,
            dst_offset=dst_off, dst_size=dst_size, op=_enum_or_int(Op, op),
            compression=_enum_or_int(Compression, comp), source_type=_enum_or_int(SourceType, stype),
            uncompressed_size=usize, cancel_tag=tag, name_offset=name_off, name_length=name_len,
            level=level, flags=flags, reserved=reserved,
        )

    def to_dict(self) -> dict[str, int]:
        """Plain-int view, as error records carry it inside msgpack."""
        return {
            "id": self.request_id, "op": int(self.op), "compression": int(self.compression),
            "source_type": int(self.source_type), "src_id": self.src_id, "src_offset": self.src_offset,
            "src_size": self.src_size, "dst_id": self.dst_id, "dst_offset": self.dst_offset,
            "dst_size": self.dst_size, "uncompressed_size": self.uncompressed_size, "cancel_tag": self.cancel_tag,
        }


@dataclass(frozen=True, slots=True)
class CompletionRecord:
    """One completion as it travels in a COMPLETIONS body frame (32 bytes)."""

    request_id: int
    bytes: int
    hresult: int
    errno: int
    status: Status
    reason: Reason

    def pack_into(self, buffer: bytearray | memoryview, offset: int) -> None:
        COMPLETION_RECORD.pack_into(buffer, offset, self.request_id, self.bytes, self.hresult, self.errno,
                                    self.status, self.reason)


def _enum_or_int(kind, value):
    try:
        return kind(value)
    except ValueError:
        return value


def pack_requests(records: list[RequestRecord]) -> bytearray:
    out = bytearray(REQUEST_RECORD_SIZE * len(records))
    for i, record in enumerate(records):
        record.pack_into(out, i * REQUEST_RECORD_SIZE)
    return out


def iter_requests(body: bytes | memoryview) -> Iterator[RequestRecord]:
    view = memoryview(body)
    if len(view) % REQUEST_RECORD_SIZE:
        raise ValueError(f"request body of {len(view)} bytes is not a multiple of {REQUEST_RECORD_SIZE}")
    for offset in range(0, len(view), REQUEST_RECORD_SIZE):
        yield RequestRecord.unpack_from(view, offset)


def pack_completions(records: list[CompletionRecord]) -> bytearray:
    out = bytearray(COMPLETION_RECORD_SIZE * len(records))
    for i, record in enumerate(records):
        record.pack_into(out, i * COMPLETION_RECORD_SIZE)
    return out


def iter_completions(body: bytes | memoryview) -> Iterator[CompletionRecord]:
    view = memoryview(body)
    if len(view) % COMPLETION_RECORD_SIZE:
        raise ValueError(f"completion body of {len(view)} bytes is not a multiple of {COMPLETION_RECORD_SIZE}")
    for rid, nbytes, hresult, err, status, reason in COMPLETION_RECORD.iter_unpack(view):
        yield CompletionRecord(rid, nbytes, hresult, err, _enum_or_int(Status, status), _enum_or_int(Reason, reason))
