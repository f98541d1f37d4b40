"""``dsd read PATH [--offset N] [--size N] [-o OUT]``: read a file through the daemon."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("read", help="read a file through the daemon (to stdout or -o OUT)")
    p.add_argument("path")
    p.add_argument("--offset", type=_nonnegative, default=0)
    p.add_argument("--size", type=_nonnegative, default=None, help="bytes to read (default: to the end)")
    p.add_argument("-o", "--output", help="write here instead of stdout")
    p.add_argument("--endpoint", help="daemon endpoint (default: $DSD_ENDPOINT or the ipc socket)")
    p.set_defaults(func=_read)


def _nonnegative(text: str) -> int:
    value = int(text, 0)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _read(args: argparse.Namespace) -> int:
    from dsd.client import Client, DsdError

    try:
        with Client(args.endpoint) as client:
            data = client.read(args.path, args.offset, args.size)
    except DsdError as exc:
        print(f"dsd read: {exc}", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "wb") as out:
            out.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0
