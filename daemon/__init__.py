"""dsd.daemon — the dsd service: one per user (or host), shared by every client.

A trio program. It binds a ZeroMQ ROUTER on an ipc socket (native clients, protected by a
0700 runtime directory) and on loopback TCP (Wine clients, who must present the per-user
token), speaks ``dsd.protocol``, and hands whole request batches to the native io engine
(``dsd._native``), which reads straight into the clients' shared memory. ``run`` is the
entry point of ``dsd serve``; ``systemd`` holds the sd_notify glue.
"""

from ._config import IO_BACKENDS, Config
from ._logging import setup_logging
from ._server import Daemon

__all__ = ["IO_BACKENDS", "Config", "Daemon", "run", "setup_logging"]


def run(config: Config) -> None:
    """Run the daemon in the foreground until SIGTERM/SIGINT."""
    import trio

    trio.run(Daemon(config).run)
