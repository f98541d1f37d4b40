"""systemd integration without a dependency: the sd_notify datagram protocol and the watchdog.

Everything here is a no-op outside systemd (no ``NOTIFY_SOCKET``), and failures to notify are
logged, never raised: a daemon must not die because its supervisor went away. The
systemd-python package would add a compiled dependency for these ~100 lines, so it is not used.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("dsd.daemon")


class Notifier:
    """Sends ``KEY=VALUE`` state lines to ``$NOTIFY_SOCKET`` (sd_notify(3))."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_usec = _watchdog_usec(env)
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        if self.address is None:
            return False
        payload = "\n".join(lines).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self.address)
            return True
        except OSError as exc:
            log.warning("sd_notify(%s) failed: %s", payload.decode(errors="replace"), exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", f"MAINPID={os.getpid()}", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        return self.notify("RELOADING=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _socket_address(raw: str) -> str | bytes | None:
    if not raw:
        return None
    if raw.startswith("@"):  # abstract namespace
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # vsock and other forms are not used for user services


def _watchdog_usec(env) -> int | None:
    """WATCHDOG_USEC if it is meant for this process (WATCHDOG_PID unset or ours)."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value if value > 0 else None

