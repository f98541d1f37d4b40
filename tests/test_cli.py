"""The dsd command: read, doctor, serve's argument checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def dsd(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsd", *args], capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_read_to_file_and_stdout(daemon, make_file, tmp_path):
    path, data = make_file(70_000)
    out = tmp_path / "out.bin"
    env = {"DSD_ENDPOINT": daemon.ipc}
    res = dsd("read", str(path), "--offset", "100", "--size", "5000", "-o", str(out), env=env)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == data[100:5100]
    res = dsd("read", str(path), "--offset", "0x10", env=env)
    assert res.returncode == 0 and res.stdout == data[16:]


def test_read_errors_are_one_line(daemon, tmp_path):
    res = dsd("read", str(tmp_path / "missing"), env={"DSD_ENDPOINT": daemon.ipc})
    assert res.returncode == 1
    assert res.stderr.decode().startswith("dsd read: cannot open") and b"Traceback" not in res.stderr
    res = dsd("read", "x", env={"DSD_ENDPOINT": f"ipc://{tmp_path}/no.sock"})
    assert res.returncode == 1 and b"dsd serve" in res.stderr


def test_doctor_reports_each_feature(daemon):
    res = dsd("doctor", "--json", "--endpoint", daemon.ipc)
    assert res.returncode == 0, res.stdout + res.stderr
    checks = {c["name"]: c for c in json.loads(res.stdout)}
    assert checks["native core"]["ok"]
    assert checks["/dev/shm"]["ok"]
    assert checks["daemon"]["ok"] and "answering" in checks["daemon"]["detail"]
    assert "io_uring" in checks and checks["io_uring"]["detail"]
    assert "O_DIRECT on /tmp" in checks
    plain = dsd("doctor", "--endpoint", daemon.ipc)
    assert b"[ok ] native core" in plain.stdout


@pytest.mark.parametrize("args, message", [
    (["--tcp", "tcp://0.0.0.0:5000"], b"loopback"),
    (["--ipc", "off", "--tcp", "off"], b"nothing to serve on"),
    (["--ipc", "/tmp/x"], b"must start with ipc://"),
])
def test_serve_rejects_bad_settings(args, message, tmp_path):
    res = dsd("serve", "--runtime-dir", str(tmp_path / "r"), *args, timeout=30)
    assert res.returncode == 2 and message in res.stderr


def test_serve_refuses_a_second_daemon_on_the_same_socket(daemon):
    res = dsd("serve", "--runtime-dir", str(daemon.runtime_dir), "--tcp", "off", timeout=30)
    assert res.returncode == 1 and b"already serving" in res.stderr
    assert daemon.alive()


def test_help_lists_commands():
    res = dsd("--help")
    for cmd in (b"serve", b"read", b"doctor", b"bench"):
        assert cmd in res.stdout


def _all_parsers(parser, path=("dsd",)):
    import argparse
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, (*path, name))


def test_every_help_text_renders():
    # argparse expands help strings with %-formatting only when --help is asked for, so a stray "%"
    # breaks that one command's help and nothing else would notice.
    from dsd.cli import build_parser
    seen = []
    for path, parser in _all_parsers(build_parser()):
        assert parser.format_help(), path
        seen.append(" ".join(path))
    assert "dsd bench read" in seen and "dsd serve" in seen
