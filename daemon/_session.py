"""Per-client state on the daemon side: one Session per connected client.

Everything a client owns (open files, mapped regions, unsubmitted batches, its requests in
the io engine) hangs off its Session, so releasing a client is one call: ``close``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from dsd import _native
from dsd.protocol import Completions, Connection, Message, Role

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
    queues: dict[int, Any] = field(default_factory=dict)     # queue id -> daemon._queues.Queue (0: default)
    outbox: list[bytes] = field(default_factory=list)        # completion records to send at the next flush
    outbox_errors: list[dict[str, Any]] = field(default_factory=list)
    client_name: str = "?"
    pid: int = 0
    # called when the outbox goes from empty to non-empty, so the daemon flushes only these sessions
    on_pending: Any = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def new_id(self) -> int:
        """File and region ids share one counter, so an id never names two things."""
        return next(self._ids)

    def send(self, msg: Message) -> None:
        self.socket.send([self.identity, *self.conn.send(msg)])

    def complete(self, records: bytes, errors: list[dict[str, Any]] | None = None) -> None:
        """Queue completion records for the next COMPLETIONS message (one per flush)."""
        if not self.outbox and self.on_pending is not None:
            self.on_pending(self)
        self.outbox.append(records)
        if errors:
            self.outbox_errors.extend(errors)

    def flush(self) -> None:
        if not self.outbox:
            return
        body = self.outbox[0] if len(self.outbox) == 1 else b"".join(self.outbox)
        errors, self.outbox, self.outbox_errors = self.outbox_errors, [], []
        self.send(Completions(count=len(body) // 32, errors=errors, bodies=[body]))

    def describe(self) -> str:
        return f"client {self.key} ({self.client_name}, pid {self.pid})"

    def close(self, engine: Any) -> list[int]:
        """Drop the client's requests and release its files and mappings (deferred natively
        until requests already in the kernel finish). Returns the engine keys it had."""
        keys = [key for queue in self.queues.values() for key in queue.keys()]
        for queue in self.queues.values():
            queue.closed = True
        if engine is not None:
            for key in keys:
                engine.drop_client(key)
        self.queues.clear()
        self.outbox.clear()
        self.registry.close()
        self.files.clear()
        self.regions.clear()
        return keys
