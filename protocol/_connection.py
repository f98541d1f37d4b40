"""Per-connection state machine (sans-I/O, h11 style).

A ``Connection`` turns messages into frames (``send``) and frames into messages (``receive``)
and enforces who may say what, when: nothing but HELLO before the handshake, only the
client's messages from a client and only the daemon's from the daemon. It owns no socket;
the caller moves the frames.
"""

from __future__ import annotations

import enum
from typing import Any

from ._errors import LocalProtocolError, RemoteProtocolError
from ._messages import PROTOCOL_VERSION, Bye, Error, Hello, Message, Welcome, decode


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    START = "start"              # nothing exchanged yet
    HELLO_SENT = "hello-sent"    # client: waiting for WELCOME; server: HELLO received, reply owed
    READY = "ready"
    CLOSING = "closing"          # client: BYE sent, replies and completions may still arrive
    CLOSED = "closed"


class Connection:
    """One side of one client <-> daemon conversation."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.state = State.START
        self.peer_version: int | None = None
        self._next_seq = 1

    def next_seq(self) -> int:
        """A fresh sequence number for a client request (replies echo it)."""
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFFFFFFFF or 1
        return seq

    # -- outgoing -------------------------------------------------------------------------

    def send(self, msg: Message) -> list[Any]:
        """Frames for ``msg``; raises LocalProtocolError if this side may not send it now."""
        mine = msg.FROM_CLIENT == (self.role is Role.CLIENT)
        if not mine:
            raise LocalProtocolError(f"a {self.role.value} cannot send {msg.TYPE}")
        if self.state in (State.CLOSED, State.CLOSING):
            raise LocalProtocolError(f"connection is closed; cannot send {msg.TYPE}")
        if self.role is Role.CLIENT:
            if isinstance(msg, Hello):
                if self.state is not State.START:
                    raise LocalProtocolError("HELLO was already sent")
                self.state = State.HELLO_SENT
            elif self.state is not State.READY:
                raise LocalProtocolError(f"cannot send {msg.TYPE} before the handshake completed")
            elif isinstance(msg, Bye):
                self.state = State.CLOSING
        else:
            if isinstance(msg, Welcome):
                if self.state is not State.HELLO_SENT:
                    raise LocalProtocolError("WELCOME answers a HELLO that was not received")
                self.state = State.READY
            elif isinstance(msg, Error) and self.state is State.HELLO_SENT:
                self.state = State.CLOSED  # handshake refused
            elif self.state is not State.READY and not isinstance(msg, Error):
                raise LocalProtocolError(f"cannot send {msg.TYPE} before the handshake completed")
        return msg.to_frames()

    # -- incoming -------------------------------------------------------------------------

    def receive(self, frames: list[Any]) -> Message:
        """Decode and check the peer's frames; raises RemoteProtocolError on anything invalid."""
        msg = decode(frames)
        from_client = self.role is Role.SERVER
        if msg.FROM_CLIENT != from_client:
            raise RemoteProtocolError(f"{msg.TYPE} cannot come from the {'client' if from_client else 'daemon'}")
        if self.state is State.CLOSED:
            raise RemoteProtocolError(f"{msg.TYPE} received on a closed connection")
        if self.role is Role.SERVER:
            if isinstance(msg, Hello):
                if self.state is not State.START:
                    raise RemoteProtocolError("HELLO sent twice")
                self.peer_version = msg.version
                self.state = State.HELLO_SENT
            elif self.state is not State.READY:
                raise RemoteProtocolError(f"{msg.TYPE} before HELLO")
            elif isinstance(msg, Bye):
                self.state = State.CLOSED
        else:
            if isinstance(msg, Welcome):
                if self.state is not State.HELLO_SENT:
                    raise RemoteProtocolError("WELCOME without a HELLO")
                self.peer_version = msg.version
                if msg.version != PROTOCOL_VERSION:
                    self.state = State.CLOSED
                    raise RemoteProtocolError(f"daemon speaks protocol {msg.version}, this client {PROTOCOL_VERSION}")
                self.state = State.READY
            elif isinstance(msg, Error) and self.state is State.HELLO_SENT:
                self.state = State.CLOSED
            elif self.state is State.HELLO_SENT and not isinstance(msg, Error):
                raise RemoteProtocolError(f"{msg.TYPE} before WELCOME")
        return msg
