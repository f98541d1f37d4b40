"""The layering rules of docs/design.md: no arrow runs upward, and public names are exported."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_protocol_is_sans_io():
    loaded = _modules_after_import("dsd.protocol")
    assert not {"zmq", "trio", "dsd.daemon", "dsd.client", "dsd._native"} & loaded


def test_client_never_imports_the_daemon_or_native_code():
    loaded = _modules_after_import("dsd.client")
    assert not {m for m in loaded if m.startswith(("dsd.daemon", "dsd._native"))}


def test_codec_never_imports_the_daemon():
    loaded = _modules_after_import("dsd.codec")
    assert not {m for m in loaded if m.startswith(("dsd.daemon", "dsd.client"))}


@pytest.mark.parametrize("package", ["dsd.protocol", "dsd.client", "dsd.daemon", "dsd.codec", "dsd.daemon.gpu"])
def test_every_exported_name_exists(package):
    module = importlib.import_module(package)
    assert module.__doc__ and len(module.__doc__.strip()) > 80, "each package starts with a paragraph on its layer"
    for name in getattr(module, "__all__", []):
        assert hasattr(module, name), f"{package}.__all__ names {name!r}, which does not exist"
