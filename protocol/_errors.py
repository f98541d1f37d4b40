"""Protocol errors, split the h11 way: who is at fault decides the class."""

from __future__ import annotations


class ProtocolError(Exception):
    """Root of dsd.protocol errors."""


class LocalProtocolError(ProtocolError):
    """This side misused the protocol (a bug in the caller): e.g. sending before HELLO."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something that is not valid dsd protocol: malformed frames, msgpack or fields."""
