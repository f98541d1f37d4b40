"""Daemon settings: defaults, then environment variables, then command-line flags.

docs/configuration.md lists every setting; keep the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dsd import _paths, ioengine

IO_BACKENDS = ioengine.BACKENDS


@dataclass
class Config:
    runtime_dir: Path = field(default_factory=_paths.runtime_dir)
    ipc_endpoint: str | None = None        # None: ipc://<runtime_dir>/dsd.sock ; "off": no ipc socket
    tcp_endpoint: str | None = None        # None: tcp://127.0.0.1:47811 ; "off": no tcp socket
    # io engine settings given on the command line; the rest come from DSD_IO_* (dsd.ioengine)
    io_overrides: dict = field(default_factory=dict)
    # records the scheduler keeps inside the io engine; smaller = priorities bite sooner, larger = more overlap
    sched_window: int = 4096
    gpu_staging_bytes: int = 256 << 20      # GPU staging memory for compressed reads routed to the GPU
    gpu_export_bytes: int = 1 << 30         # GPU buffers one session may hold for handoff (DECODE_TO_GPU)
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Config":
        env = os.environ if environ is None else environ
        cfg = cls()
        if env.get("DSD_RUNTIME_DIR"):
            cfg.runtime_dir = Path(env["DSD_RUNTIME_DIR"])
        cfg.ipc_endpoint = env.get("DSD_IPC") or None
        cfg.tcp_endpoint = env.get("DSD_TCP") or None
        cfg.log_level = env.get("DSD_LOG_LEVEL", cfg.log_level).upper()
        if env.get("DSD_GPU_STAGING_BYTES"):
            try:
                cfg.gpu_staging_bytes = int(env["DSD_GPU_STAGING_BYTES"])
            except ValueError:
                raise ValueError(f"DSD_GPU_STAGING_BYTES={env['DSD_GPU_STAGING_BYTES']!r} is not an integer") from None
        if env.get("DSD_GPU_EXPORT_BYTES"):
            try:
                cfg.gpu_export_bytes = int(env["DSD_GPU_EXPORT_BYTES"])
            except ValueError:
                raise ValueError(f"DSD_GPU_EXPORT_BYTES={env['DSD_GPU_EXPORT_BYTES']!r} is not an integer") from None
        if env.get("DSD_SCHED_WINDOW"):
            try:
                cfg.sched_window = int(env["DSD_SCHED_WINDOW"])
            except ValueError:
                raise ValueError(f"DSD_SCHED_WINDOW={env['DSD_SCHED_WINDOW']!r} is not an integer") from None
        return cfg

    def validate(self) -> None:
        self.io_settings()  # raises ValueError naming the bad DSD_IO_* variable or flag
        from .gpu.selection import decode_mode, min_gpu_bytes

        decode_mode()    # ValueError naming DSD_DECODE when it is not gpu, cpu or auto
        min_gpu_bytes()
        if not 1 << 16 <= self.gpu_staging_bytes <= 1 << 40:
            raise ValueError(f"GPU staging size {self.gpu_staging_bytes} is outside 64 KiB..1 TiB")
        if not 0 <= self.gpu_export_bytes <= 1 << 40:
            raise ValueError(f"GPU export limit {self.gpu_export_bytes} is outside 0..1 TiB (0 turns handoff off)")
        if not 1 <= self.sched_window <= 1 << 20:
            raise ValueError(f"scheduler window {self.sched_window} is outside 1..1048576")
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

    def io_settings(self) -> ioengine.IoSettings:
        with ioengine.io_settings(**self.io_overrides) as chosen:
            return chosen

    def resolved_ipc(self) -> str | None:
        if self.ipc_endpoint == "off":
            return None
        return self.ipc_endpoint or _paths.default_ipc_endpoint(self.runtime_dir)

    def resolved_tcp(self) -> str | None:
        if self.tcp_endpoint == "off":
            return None
        return self.tcp_endpoint or _paths.default_tcp_endpoint()

