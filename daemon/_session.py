"""Per-client state on the daemon side: one Session per connected client.

Everything a client owns (open files, mapped regions, unsubmitted batches, its requests in
the io engine) hangs off its Session, so releasing a client is one call: ``close``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from dsd import _native
from dsd.protocol import Connection, Message, Role

from dsd._trio_zmq import TrioSocket


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    writable: bool


@dataclass(frozen=True, slots=True)
class RegionInfo:
    name: str
    size: int


@dataclass
class Session:
    key: int
    identity: bytes
    socket: TrioSocket
    trusted: bool              # came through the 0700 ipc socket (no token needed)
    srcfd: int                 # the connection's fd inside libzmq, to match disconnect events
    conn: Connection = field(default_factory=lambda: Connection(Role.SERVER))
    registry: Any = field(default_factory=lambda: _native.Registry())
    files: dict[int, FileInfo] = field(default_factory=dict)
    regions: dict[int, RegionInfo] = field(default_factory=dict)
    unsubmitted: list[tuple[Any, Any]] = field(default_factory=list)
    client_name: str = "?"
    pid: int = 0
    requests_submitted: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def new_id(self) -> int:
        """File and region ids share one counter, so an id never names two things."""
        return next(self._ids)

    def send(self, msg: Message) -> None:
        self.socket.send([self.identity, *self.conn.send(msg)])

    def describe(self) -> str:
        return f"client {self.key} ({self.client_name}, pid {self.pid})"

    def close(self, engine: Any) -> None:
        """Drop the client's requests and release its files and mappings (deferred natively
        until requests already in the kernel finish)."""
        if engine is not None:
            engine.drop_client(self.key)
        self.unsubmitted.clear()
        self.registry.close()
        self.files.clear()
        self.regions.clear()
