"""systemd: the notify protocol against a real AF_UNIX datagram socket, and the unit files."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from dsd.daemon.systemd import Notifier

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_notifier_sends_states(notify_socket):
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("serving")
    msg = sock.recv(1024).decode().split("\n")
    assert "READY=1" in msg and f"MAINPID={os.getpid()}" in msg and "STATUS=serving" in msg
    n.stopping()
    assert sock.recv(1024) == b"STOPPING=1"
    n.watchdog()
    assert sock.recv(1024) == b"WATCHDOG=1"
    n.close()


def test_notifier_abstract_namespace():
    name = f"dsd-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    n = Notifier({"NOTIFY_SOCKET": "@" + name})
    n.reloading()
    assert sock.recv(100) == b"RELOADING=1"
    n.close()
    sock.close()


def test_notifier_is_a_no_op_outside_systemd():
    n = Notifier({})
    assert not n.enabled and not n.ready() and not n.watchdog()
    assert Notifier({"NOTIFY_SOCKET": "relative/path"}).notify("READY=1") is False


def test_notify_failures_are_not_fatal(tmp_path):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.ready() is False  # logged, not raised
    n.close()


def test_watchdog_settings_are_for_this_process_only():
    assert Notifier({"WATCHDOG_USEC": "2000000"}).watchdog_usec == 2_000_000
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}).watchdog_usec is None
    assert Notifier({"WATCHDOG_USEC": "junk"}).watchdog_usec is None


def test_daemon_sends_ready_after_binding_then_watchdog_then_stopping(start_daemon):
    d = start_daemon(env={"WATCHDOG_USEC": "200000"})   # READY is awaited by the fixture itself
    assert (d.runtime_dir / "dsd.sock").exists()          # bound before READY
    d.wait_for("WATCHDOG=1", timeout=10)
    d.wait_for("WATCHDOG=1", timeout=10)
    d.proc.send_signal(15)
    d.wait_for("STOPPING=1", timeout=10)
    assert d.proc.wait(20) == 0
    assert not (d.runtime_dir / "dsd.sock").exists()      # cleaned up


def test_runtime_dir_and_token_are_private(daemon):
    assert oct(os.stat(daemon.runtime_dir).st_mode & 0o777) == oct(0o700)
    assert oct(os.stat(daemon.runtime_dir / "token").st_mode & 0o777) == oct(0o600)
    assert len(daemon.token) == 64


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", ["dsd.service", "dsd@.service"])
def test_units_verify(tmp_path, unit):
    """systemd-analyze verify, with ExecStart pointed at a binary that exists here."""
    text = (ROOT / "systemd" / unit).read_text()
    exe = shutil.which("dsd") or "/bin/true"
    lines = [f"ExecStart={exe} serve" if line.startswith("ExecStart=") else line for line in text.splitlines()]
    target = tmp_path / unit
    target.write_text("\n".join(lines) + "\n")
    if unit.endswith("@.service"):
        target = tmp_path / "dsd@alice.service"
        target.write_text("\n".join(lines) + "\n")
    res = subprocess.run(["systemd-analyze", "verify", str(target)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (res.stdout + res.stderr).splitlines() if str(target.name) in line or "dsd" in line]
    assert res.returncode == 0 and not problems, res.stdout + res.stderr
