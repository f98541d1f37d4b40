"""The ``dsd`` command.

Each sub-command is a module in ``dsd.commands`` that exposes ``register(subparsers)``;
``register`` adds its parser and sets ``func`` (args -> exit code). Discovering them keeps
this file free of per-command code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import dsd.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsd", description="DirectStorage for Linux")
    parser.add_argument("--version", action="version", version=f"dsd {__import__('dsd').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(dsd.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"dsd.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
