"""Helpers shared by the benchmarks: test files, a private daemon, CPU accounting, output."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator


def make_test_file(size: int, directory: str | None = None, *, prefix: str = "dsd-bench") -> Path:
    """A file of ``size`` pseudo-random bytes (made once, reused while its size matches)."""
    path = Path(directory or tempfile.gettempdir()) / f"{prefix}-{size}.bin"
    if not path.exists() or path.stat().st_size != size:
        block = random.Random(0).randbytes(16 << 20)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            left = size
            while left > 0:
                n = min(left, len(block))
                out.write(block[:n])
                left -= n
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    return path


def warm_page_cache(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (includes all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """Per thread of a process: (name, CPU seconds so far). From /proc/PID/task/TID/schedstat
    (nanoseconds run, exact) where the kernel has it, else from the stat file's clock ticks."""
    out: dict[int, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = f"/proc/{pid}/task/{tid}"
        try:
            stat = Path(f"{base}/stat").read_text()
            try:
                cpu = int(Path(f"{base}/schedstat").read_text().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                fields = stat.rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue  # the thread ended meanwhile
        out[int(tid)] = (stat[stat.index("(") + 1:stat.rindex(")")], cpu)
    return out


@dataclass
class Daemon:
    endpoint: str
    pid: int
    proc: subprocess.Popen | None = None


@contextmanager
def private_daemon(extra_env: dict[str, str] | None = None) -> Iterator[Daemon]:
    """Start ``dsd serve`` in a temporary runtime directory; yields once it reported READY."""
    with tempfile.TemporaryDirectory(prefix="dsd-bench-") as tmp:
        notify_path = os.path.join(tmp, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(30)
        env = {**os.environ, "DSD_RUNTIME_DIR": os.path.join(tmp, "run"), "NOTIFY_SOCKET": notify_path,
               "DSD_LOG_LEVEL": "WARNING", **(extra_env or {})}
        proc = subprocess.Popen([sys.executable, "-m", "dsd", "serve", "--tcp", "off"], env=env)
        try:
            while b"READY=1" not in notify.recv(4096):
                pass
            yield Daemon(f"ipc://{tmp}/run/dsd.sock", proc.pid, proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            notify.close()


@dataclass
class Report:
    """Cases -> contenders -> figures; printed as a table or one JSON object."""

    benchmark: str
    cases: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, case: str, contender: str, **figures: Any) -> None:
        self.cases.setdefault(case, {})[contender] = figures

    def emit(self, as_json: bool) -> None:
        if as_json:
            print(json.dumps({"benchmark": self.benchmark, "cases": self.cases, "notes": self.notes}, indent=1))
            return
        print(f"== dsd bench {self.benchmark}")
        for case, contenders in self.cases.items():
            print(f"-- {case}")
            for name, figures in contenders.items():
                shown = "  ".join(f"{k}={_fmt(v)}" for k, v in figures.items())
                print(f"   {name:<14} {shown}")
        for note in self.notes:
            print(f"note: {note}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def timed(fn, *, min_seconds: float = 1.0) -> tuple[float, int]:
    """Run ``fn`` (returning units of work) until ``min_seconds`` pass; returns (seconds, units)."""
    start = time.perf_counter()
    units = 0
    while True:
        units += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed, units


def best_of(fn, repeat: int) -> float:
    """The fastest of ``repeat`` timed calls of ``fn`` (seconds): noise only ever adds time."""
    best = float("inf")
    for _ in range(max(repeat, 1)):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
