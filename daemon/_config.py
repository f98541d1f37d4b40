"""Daemon settings: defaults, then environment variables, then command-line flags.

docs/configuration.md lists every setting; keep the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dsd import _paths

IO_BACKENDS = ("auto", "uring", "posix")


@dataclass
class Config:
    runtime_dir: Path = field(default_factory=_paths.runtime_dir)
    ipc_endpoint: str | None = None        # None: ipc://<runtime_dir>/dsd.sock ; "off": no ipc socket
    tcp_endpoint: str | None = None        # None: tcp://127.0.0.1:47811 ; "off": no tcp socket
    io_backend: str = "auto"
    io_workers: int = 0                    # 0: one per core
    io_queue_depth: int = 64
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Config":
        env = os.environ if environ is None else environ
        cfg = cls()
        if env.get("DSD_RUNTIME_DIR"):
            cfg.runtime_dir = Path(env["DSD_RUNTIME_DIR"])
        cfg.ipc_endpoint = env.get("DSD_IPC") or None
        cfg.tcp_endpoint = env.get("DSD_TCP") or None
        cfg.io_backend = env.get("DSD_IO_BACKEND", cfg.io_backend)
        cfg.io_workers = _int(env, "DSD_IO_WORKERS", cfg.io_workers)
        cfg.io_queue_depth = _int(env, "DSD_IO_QUEUE_DEPTH", cfg.io_queue_depth)
        cfg.log_level = env.get("DSD_LOG_LEVEL", cfg.log_level).upper()
        return cfg

    def validate(self) -> None:
        if self.io_backend not in IO_BACKENDS:
            raise ValueError(f"io backend {self.io_backend!r} is not one of {', '.join(IO_BACKENDS)}")
        if self.io_workers < 0 or self.io_queue_depth < 1:
            raise ValueError("io workers must be >= 0 and queue depth >= 1")
        for name in ("ipc_endpoint", "tcp_endpoint"):
            value = getattr(self, name)
            prefix = name[:3] + "://"
            if value not in (None, "off") and not value.startswith(prefix):
                raise ValueError(f"{name.replace('_', ' ')} {value!r} must start with {prefix} (or be 'off')")
        tcp = self.resolved_tcp()
        if tcp is not None and not tcp.startswith(("tcp://127.", "tcp://localhost:", "tcp://[::1]:")):
            raise ValueError(f"tcp endpoint {tcp!r} must be on the loopback interface")
        if self.resolved_ipc() is None and tcp is None:
            raise ValueError("both the ipc and the tcp socket are off; nothing to serve on")

    def resolved_ipc(self) -> str | None:
        if self.ipc_endpoint == "off":
            return None
        return self.ipc_endpoint or _paths.default_ipc_endpoint(self.runtime_dir)

    def resolved_tcp(self) -> str | None:
        if self.tcp_endpoint == "off":
            return None
        return self.tcp_endpoint or _paths.default_tcp_endpoint()


def _int(env, key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not an integer") from None
