"""``dsd decompress [--threads N] IN OUT`` (the format comes from IN's magic bytes)."""

from __future__ import annotations

import argparse
import os
import sys

from dsd._progress import ProgressBar
from dsd.codec import CodecError
from dsd.codec._files import decompress_file
from dsd.commands.compress import remove_partial, show_progress


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("decompress", help="decompress a GDeflate or Zstandard file (format detected)")
    p.add_argument("--threads", type=int, default=0, help="worker threads (default 0 = all cores)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: for large files when stderr is a terminal)")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        size = os.path.getsize(args.input)
        # The bar counts output bytes; decompress_file reports the total from the header.
        bar = ProgressBar("decompress", size, enabled=show_progress(args.progress, size))
        try:
            fmt, n_in, n_out = decompress_file(args.input, args.output, threads=args.threads,
                                               progress=bar.update)
        finally:
            bar.close()
    except (CodecError, OSError, ValueError) as exc:
        print(f"dsd decompress: error: {args.input}: {exc}", file=sys.stderr)
        remove_partial(args.input, args.output)
        return 1
    print(f"{args.input}: {n_in} -> {n_out} bytes ({fmt.name.lower()})", file=sys.stderr)
    return 0

