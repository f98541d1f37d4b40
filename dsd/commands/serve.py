"""``dsd serve``: run the daemon in the foreground (systemd Type=notify aware)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the dsd daemon in the foreground")
    p.add_argument("--runtime-dir", type=Path, help="runtime directory (default: $XDG_RUNTIME_DIR/dsd or /tmp/dsd-UID)")
    p.add_argument("--ipc", metavar="ENDPOINT", help="ipc:// endpoint, or 'off' (default: ipc://RUNTIME_DIR/dsd.sock)")
    p.add_argument("--tcp", metavar="ENDPOINT", help="loopback tcp:// endpoint, or 'off' (default: tcp://127.0.0.1:47811)")
    p.add_argument("--io-backend", choices=("auto", "uring", "posix"), help="io engine (default: auto; env DSD_IO_BACKEND)")
    p.add_argument("--io-workers", type=int, help="io rings / threads, 0 = one per core (env DSD_IO_WORKERS)")
    p.add_argument("--io-direct", choices=("auto", "off"),
                   help="O_DIRECT when alignment allows (auto) or always the page cache (env DSD_IO_DIRECT)")
    p.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper)
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from dsd.daemon import Config, run, setup_logging

    try:
        config = Config.from_env()
        if args.runtime_dir:
            config.runtime_dir = args.runtime_dir
        for attr, value in (("ipc_endpoint", args.ipc), ("tcp_endpoint", args.tcp), ("log_level", args.log_level)):
            if value is not None:
                setattr(config, attr, value)
        for name, value in (("backend", args.io_backend), ("workers", args.io_workers), ("direct", args.io_direct)):
            if value is not None:
                config.io_overrides[name] = value
        config.validate()
    except ValueError as exc:
        print(f"dsd serve: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    try:
        run(config)
    except OSError as exc:
        print(f"dsd serve: {exc}", file=sys.stderr)
        return 1
    return 0
