"""``dsd bench CASE [--json]``: benchmarks with their baselines measured in the same run."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import dsd.bench


def _cases() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(dsd.bench.__path__) if not m.name.startswith("_"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run benchmarks (ratios against a baseline in the same run)")
    cases = parser.add_subparsers(dest="case", metavar="CASE")
    for name in _cases():
        importlib.import_module(f"dsd.bench.{name}").register(cases)
    all_parser = cases.add_parser("all", help="every benchmark, one after another")
    all_parser.add_argument("--json", action="store_true", help="print one JSON object per case")
    all_parser.set_defaults(func=_run_all, parser=cases)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _run_all(args: argparse.Namespace) -> int:
    status = 0
    for name in _cases():
        sub = args.parser.choices[name]
        sub_args = sub.parse_args(["--json"] if args.json else [])
        status |= int(sub_args.func(sub_args) or 0)
    return status
