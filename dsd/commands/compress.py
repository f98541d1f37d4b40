"""``dsd compress [--format gdeflate|zstd] [--level N] [--threads N] IN OUT``."""

from __future__ import annotations

import argparse
import os
import sys

from dsd._progress import ProgressBar
from dsd.codec import CodecError, Format
from dsd.codec._files import compress_file

PROGRESS_MIN_BYTES = 32 << 20  # below this a bar would only flicker


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("compress", help="compress a file to GDeflate (default) or Zstandard")
    p.add_argument("--format", choices=["gdeflate", "zstd"], default="gdeflate", help="output format (default gdeflate)")
    p.add_argument("--level", type=int, default=None,
                   help="codec level: GDeflate 0..12 (default 9; 1 fastest, 12 best ratio), zstd default 3")
    p.add_argument("--threads", type=int, default=0, help="worker threads (default 0 = all cores)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: for large files when stderr is a terminal)")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.set_defaults(func=run)


def show_progress(flag: bool | None, size: int) -> bool:
    if flag is not None:
        return flag
    return size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()


def run(args: argparse.Namespace) -> int:
    fmt = Format.GDEFLATE if args.format == "gdeflate" else Format.ZSTD
    try:
        size = os.path.getsize(args.input)
        bar = ProgressBar("compress", size, enabled=show_progress(args.progress, size))
        try:
            n_in, n_out = compress_file(args.input, args.output, fmt, level=args.level, threads=args.threads,
                                        progress=bar.update)
        finally:
            bar.close()
    except (CodecError, OSError, ValueError) as exc:
        print(f"dsd compress: error: {exc}", file=sys.stderr)
        remove_partial(args.input, args.output)
        return 1
    ratio = n_in / n_out if n_out else 0.0
    print(f"{args.input}: {n_in} -> {n_out} bytes ({args.format}, ratio {ratio:.3f})", file=sys.stderr)
    return 0


def remove_partial(src: str, dst: str) -> None:
    """Never leave a half-written output that looks like a result (but never touch the input)."""
    try:
        if os.path.exists(dst) and not (os.path.exists(src) and os.path.samefile(src, dst)):
            os.remove(dst)
    except OSError:
        pass
