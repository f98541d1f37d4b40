"""Shared fixtures: a real daemon started as a subprocess, with its own runtime directory,
an ipc socket and a loopback TCP port, and a systemd-style notify socket to know when it is
ready (READY=1 comes only after the sockets are bound)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _dsd_command() -> list[str]:
    """`python -m dsd`; under `make test` the venv's coverage .pth hook records subprocesses."""
    return [sys.executable, "-m", "dsd"]


class DaemonProcess:
    """A `dsd serve` subprocess. ``ipc``/``tcp`` are its bound endpoints, ``token`` the TCP secret."""

    def __init__(self, runtime_dir: Path, *, extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                 wrapper: list[str] | None = None) -> None:
        self.runtime_dir = runtime_dir
        self.notify_path = str(runtime_dir.parent / f"notify-{os.getpid()}-{id(self)}.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(30)
        full_env = dict(os.environ)
        full_env.update({"DSD_RUNTIME_DIR": str(runtime_dir), "NOTIFY_SOCKET": self.notify_path,
                         "DSD_LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"})
        full_env.pop("DSD_ENDPOINT", None)
        full_env.update(env or {})
        self.log_path = runtime_dir.parent / f"daemon-{id(self)}.log"
        self.log = open(self.log_path, "wb")
        cmd = (wrapper or []) + _dsd_command() + ["serve", "--tcp", "tcp://127.0.0.1:*"] + (extra_args or [])
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.messages: list[str] = []
        self.wait_for("READY=1")
        state = json.loads((runtime_dir / "daemon.json").read_text())
        self.ipc: str = state.get("ipc")
        self.tcp: str = state.get("tcp")
        self.pid = self.proc.pid
        self.token = (runtime_dir / "token").read_text().strip() if (runtime_dir / "token").exists() else None

    def wait_for(self, line: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.messages:
                if line in msg.split("\n"):
                    self.messages.remove(msg)
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError(f"daemon never sent {line!r}; log:\n{self.output()}")
            self.notify.settimeout(min(left, 1.0))
            try:
                self.messages.append(self.notify.recv(4096).decode())
            except socket.timeout:
                pass

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def shm_mappings(self) -> int:
        with open(f"/proc/{self.pid}/maps") as maps:
            return sum(1 for line in maps if "/dev/shm/" in line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.notify.close()
        os.unlink(self.notify_path)
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def start_daemon(tmp_path):
    """Factory: start_daemon(**kw) -> DaemonProcess; all are stopped at teardown."""
    started: list[DaemonProcess] = []

    def start(**kw) -> DaemonProcess:
        rundir = tmp_path / f"run{len(started)}"
        d = DaemonProcess(rundir, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        code = d.stop()
        assert code == 0, f"daemon exited with {code}; log:\n{d.output()}"


@pytest.fixture
def daemon(start_daemon):
    return start_daemon()


@pytest.fixture
def client(daemon):
    from dsd.client import Client

    with Client(daemon.ipc, name="pytest") as c:
        yield c


@pytest.fixture
def make_file(tmp_path):
    """make_file(size, name=None) -> (path, bytes) with deterministic pseudo-random content."""
    counter = [0]

    def make(size: int, name: str | None = None) -> tuple[Path, bytes]:
        counter[0] += 1
        path = tmp_path / (name or f"data-{counter[0]}-{size}.bin")
        data = os.urandom(size) if size <= (1 << 20) else _fast_random(size, counter[0])
        path.write_bytes(data)
        return path, data

    return make


def _fast_random(size: int, seed: int) -> bytes:
    import random

    rng = random.Random(seed)
    return rng.randbytes(size)
