"""The handoff socket's two fixed-size frames (docs/protocol.md §5), sans-I/O.

ZeroMQ cannot carry file descriptors, so a GPU buffer's fd travels over a Unix stream socket
beside the ipc endpoint: the client sends one TicketRequest (the ticket from GPU_BUFFER), the
daemon answers one TicketReply, with the fd attached as SCM_RIGHTS when ``errno`` is 0, then a
UTF-8 message of ``message_len`` bytes, and closes the connection.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._errors import LocalProtocolError, RemoteProtocolError
from ._messages import TICKET_BYTES

HANDOFF_MAGIC = b"DSDH"
HANDOFF_VERSION = 1
HANDOFF_SOCKET_FILE = "handoff.sock"
MAX_HANDOFF_MESSAGE = 4096

# magic, version u8, 3 reserved bytes, ticket
TICKET_REQUEST = struct.Struct(f"<4sB3x{TICKET_BYTES}s")
# magic, version u8, 3 reserved bytes, errno u32, buffer_id u32, message_len u32
TICKET_REPLY = struct.Struct("<4sB3xIII")


@dataclass(frozen=True, slots=True)
class TicketRequest:
    ticket: bytes

    def pack(self) -> bytes:
        if len(self.ticket) != TICKET_BYTES:
            raise LocalProtocolError(f"a ticket is {TICKET_BYTES} bytes, got {len(self.ticket)}")
        return TICKET_REQUEST.pack(HANDOFF_MAGIC, HANDOFF_VERSION, self.ticket)

    @classmethod
    def unpack(cls, raw: bytes) -> "TicketRequest":
        if len(raw) != TICKET_REQUEST.size:
            raise RemoteProtocolError(f"ticket request is {TICKET_REQUEST.size} bytes, got {len(raw)}")
        magic, version, ticket = TICKET_REQUEST.unpack(raw)
        _check_head(magic, version, raw[5:8])
        return cls(ticket)


@dataclass(frozen=True, slots=True)
class TicketReply:
    errno: int          # 0: the fd is attached; else why not
    buffer_id: int
    message: str = ""

    def pack(self) -> bytes:
        text = self.message.encode()[:MAX_HANDOFF_MESSAGE]
        return TICKET_REPLY.pack(HANDOFF_MAGIC, HANDOFF_VERSION, self.errno, self.buffer_id, len(text)) + text

    @classmethod
    def unpack_head(cls, raw: bytes) -> tuple[int, int, int]:
        """(errno, buffer_id, message_len) from the first TICKET_REPLY.size bytes."""
        if len(raw) != TICKET_REPLY.size:
            raise RemoteProtocolError(f"ticket reply header is {TICKET_REPLY.size} bytes, got {len(raw)}")
        magic, version, err, buffer_id, length = TICKET_REPLY.unpack(raw)
        _check_head(magic, version, raw[5:8])
        if length > MAX_HANDOFF_MESSAGE:
            raise RemoteProtocolError(f"ticket reply message of {length} bytes exceeds {MAX_HANDOFF_MESSAGE}")
        return err, buffer_id, length


def _check_head(magic: bytes, version: int, reserved: bytes) -> None:
    if magic != HANDOFF_MAGIC:
        raise RemoteProtocolError(f"not a dsd handoff frame (magic {magic!r})")
    if version != HANDOFF_VERSION:
        raise RemoteProtocolError(f"handoff version {version}; this side speaks {HANDOFF_VERSION}")
    if reserved != b"\0\0\0":
        raise RemoteProtocolError("reserved bytes of a handoff frame must be zero")
