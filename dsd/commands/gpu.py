"""``dsd gpu [--json]``: which Vulkan device and shader GPU decoding would use, and why
(the same report `dsd doctor` and STATS show, from dsd.daemon.gpu.describe())."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gpu", help="show the Vulkan device and shader chosen for GPU decoding")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        from dsd.daemon.gpu import describe
    except ImportError as exc:  # the vulkan package itself is missing
        info = {"unavailable": f"Vulkan support not installed: {exc}"}
    else:
        info = describe()
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            if isinstance(value, dict):
                print(f"{key}:")
                for k, v in value.items():
                    print(f"  {k}: {v}")
            else:
                print(f"{key}: {value}")
    return 0 if "unavailable" not in info else 1
