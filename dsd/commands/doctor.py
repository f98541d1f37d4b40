"""``dsd doctor``: what this host supports, checked for real, and why not."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="check what this host supports (io_uring, O_DIRECT, Vulkan, /dev/shm, Wine)")
    p.add_argument("--endpoint", help="daemon endpoint to check (default: $DSD_ENDPOINT or the ipc socket)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from dsd.doctor import all_checks

    results = [check() for check in all_checks(args.endpoint)]
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=1))
    else:
        for r in results:
            mark = "ok " if r.ok else ("-- " if r.optional else "ERR")
            print(f"[{mark}] {r.name}: {r.detail}")
    return 0 if all(r.ok or r.optional for r in results) else 1
