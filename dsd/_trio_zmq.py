"""A pyzmq socket driven by trio.

The zmq FD is edge-triggered: it signals "something changed", not "a message is waiting".
So the reader drains ``EVENTS`` until POLLIN clears before waiting again, and every send
(which may consume that edge while processing zmq's internal commands) re-checks POLLIN and
wakes a waiting reader.
"""

from __future__ import annotations

from typing import Any

import trio
import zmq

# A reader also wakes this often even without an edge, as a safety net against lost edges.
_SAFETY_WAKE_SECONDS = 1.0


class TrioSocket:
    def __init__(self, sock: zmq.Socket) -> None:
        self.sock = sock
        self._fd = sock.getsockopt(zmq.FD)
        self._waiting: trio.CancelScope | None = None

    def readable(self) -> bool:
        return bool(self.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN)

    def recv_nowait(self) -> list[zmq.Frame] | None:
        """One multipart message or None when none is waiting."""
        try:
            return self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None

    async def wait_readable(self) -> None:
        if self.readable():
            return
        with trio.move_on_after(_SAFETY_WAKE_SECONDS) as scope:
            self._waiting = scope
            try:
                await trio.lowlevel.wait_readable(self._fd)
            finally:
                self._waiting = None

    def send(self, frames: list[Any]) -> None:
        """Non-blocking send; zmq errors (EHOSTUNREACH for a gone peer, EAGAIN) propagate."""
        try:
            self.sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        finally:
            if self._waiting is not None and self.readable():
                self._waiting.cancel()
