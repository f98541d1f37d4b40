"""``dsd bench read``: requests/s and GB/s through the daemon vs a plain os.preadv loop.

Both contenders read the same page-cached file in the same run: 4 KiB random reads and 1 MiB
sequential reads. The daemon's CPU use is measured from /proc, since the product target
(50,000 requests/s at <= 10% of one core) is about the daemon's cost, not the client's: the paced
50,000/s case runs ``--repeat`` times and reports the median (with every sample and the split
between the event loop, the io threads and zmq's thread), since one run on a shared machine
swings with the neighbours' load.
"""

from __future__ import annotations

import argparse
import os
import random

from ._common import Report, cpu_seconds, make_test_file, private_daemon, thread_cpu_seconds, timed, warm_page_cache

FILE_SIZE = 256 << 20


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("read", help="daemon read path vs a plain os.preadv loop")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seconds", type=float, default=2.0, help="time per contender and case")
    p.add_argument("--endpoint", help="measure an already running daemon (CPU%% is then not reported)")
    p.add_argument("--file-size", type=int, default=FILE_SIZE)
    p.add_argument("--direct", action="store_true",
                   help="let the daemon use O_DIRECT (default: page cache, like the preadv baseline)")
    p.add_argument("--repeat", type=int, default=5,
                   help="paced runs of --seconds each; the daemon CPU reported is their median (default 5)")
    p.set_defaults(func=run)


CASES = [("4k-random", 4096, 1024, True), ("1m-sequential", 1 << 20, 32, False)]


def run(args: argparse.Namespace) -> int:
    path = make_test_file(args.file_size)
    warm_page_cache(path)
    report = Report("read")
    report.notes.append(f"file {path} ({args.file_size >> 20} MiB, page cache warm); {os.cpu_count()} cores; "
                        f"daemon O_DIRECT {'auto' if args.direct else 'off'}")
    if args.endpoint:
        _measure_all(report, args, path, args.endpoint, None)
    else:
        with private_daemon({"DSD_IO_DIRECT": "auto" if args.direct else "off"}) as daemon:
            _measure_all(report, args, path, daemon.endpoint, daemon.pid)
    report.emit(args.json)
    return 0


def _measure_all(report: Report, args, path, endpoint: str, daemon_pid: int | None) -> None:
    from dsd.client import Client

    with Client(endpoint, name="bench-read") as client:
        report.notes.append(f"daemon io backend: {client.welcome.features.get('io_backend')}")
        f = client.open(path)
        for case, size, depth, rand in CASES:
            offsets = _offsets(args.file_size, size, rand)
            baseline = _preadv(path, size, offsets, args.seconds)
            report.add(case, "preadv", **baseline)
            figures = _through_daemon(client, f, size, depth, offsets, args.seconds, daemon_pid)
            figures["ratio_vs_preadv"] = round(figures["gbps"] / baseline["gbps"], 3) if baseline["gbps"] else None
            report.add(case, "dsd", **figures)
        if daemon_pid:
            report.add("4k-paced-50k-per-s", "dsd", **_paced_repeated(client, f, args.file_size, args.seconds,
                                                                     daemon_pid, args.repeat))


def _paced_repeated(client, f, file_size: int, seconds: float, daemon_pid: int, repeat: int) -> dict:
    """The paced case ``repeat`` times; the median run (by daemon CPU) and the spread. On a shared
    machine one run swings with the neighbours' load, so only the median is compared to the target."""
    import statistics

    _paced(client, f, file_size, min(seconds, 0.5), daemon_pid)  # warm up: first mappings, registrations
    runs = [_paced(client, f, file_size, seconds, daemon_pid) for _ in range(max(1, repeat))]
    cpus = sorted(r["daemon_cpu_pct_of_one_core"] for r in runs)
    median = statistics.median(cpus)
    mid = min(runs, key=lambda r: abs(r["daemon_cpu_pct_of_one_core"] - median))
    return {**mid, "daemon_cpu_pct_of_one_core": round(median, 1),
            "requests_per_s": statistics.median(r["requests_per_s"] for r in runs),
            "daemon_cpu_pct_samples": cpus, "runs": len(runs), "target_cpu_pct": 10,
            "target_met": median <= 10}


def _paced(client, f, file_size: int, seconds: float, daemon_pid: int, rate: int = 50_000,
           tick: float = 0.01) -> dict:
    """The product target: 50,000 requests/s of 4 KiB, sent in 10 ms batches; daemon CPU% in all,
    and split into the event loop (the main thread), the io threads and the rest (zmq's)."""
    import time

    per_tick = int(rate * tick)
    region = client.alloc(per_tick * 4096)
    offsets = _offsets(file_size, 4096, True)
    threads0 = thread_cpu_seconds(daemon_pid)
    start, done = time.perf_counter(), 0
    next_tick = start
    while time.perf_counter() - start < seconds:
        batch = client.batch()
        for i in range(per_tick):
            batch.read(f, offsets[(done + i) % len(offsets)], 4096, region, i * 4096)
        for req in batch.wait_all(timeout=60):
            req.result()
        done += per_tick
        next_tick += tick
        delay = next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.perf_counter() - start
    threads1 = thread_cpu_seconds(daemon_pid)
    client.free(region)
    parts = {"event_loop": 0.0, "io_threads": 0.0, "other": 0.0}
    for tid, (name, cpu) in threads1.items():
        used = cpu - threads0.get(tid, (name, 0.0))[1]
        part = "event_loop" if tid == daemon_pid else "other" if name.startswith("ZMQ") else "io_threads"
        parts[part] += used
    return {"requests_per_s": done / elapsed, "target_requests_per_s": rate,
            "daemon_cpu_pct_of_one_core": round(100 * sum(parts.values()) / elapsed, 1),
            **{f"{k}_cpu_pct": round(100 * v / elapsed, 1) for k, v in parts.items()},
            "target_cpu_pct": 10}


def _offsets(file_size: int, size: int, rand: bool) -> list[int]:
    count = file_size // size
    offsets = [i * size for i in range(count)]
    if rand:
        random.Random(1).shuffle(offsets)
    return offsets


def _preadv(path, size: int, offsets: list[int], seconds: float) -> dict:
    fd = os.open(path, os.O_RDONLY)
    buf = bytearray(size)
    pos = [0]

    def work() -> int:
        n = 0
        for _ in range(256):
            os.preadv(fd, [buf], offsets[pos[0] % len(offsets)])
            pos[0] += 1
            n += 1
        return n

    try:
        elapsed, count = timed(work, min_seconds=seconds)
    finally:
        os.close(fd)
    return {"requests_per_s": count / elapsed, "gbps": count * size / elapsed / 1e9}


def _through_daemon(client, f, size: int, depth: int, offsets: list[int], seconds: float,
                    daemon_pid: int | None) -> dict:
    """Keep two batches of ``depth`` requests in flight, resubmitting as each completes."""
    region = client.alloc(size * depth * 2)
    pos = [0]

    def submit(slot: int):
        batch = client.batch()
        for i in range(depth):
            batch.read(f, offsets[pos[0] % len(offsets)], size, region, (slot * depth + i) * size)
            pos[0] += 1
        batch.submit()
        return batch

    cpu0 = cpu_seconds(daemon_pid) if daemon_pid else None
    inflight = [submit(0), submit(1)]
    turn = [0]

    def work() -> int:
        slot = turn[0] % 2
        batch = inflight[slot]
        for req in batch.wait_all(timeout=60):
            req.result()
        inflight[slot] = submit(slot)
        turn[0] += 1
        return depth

    elapsed, count = timed(work, min_seconds=seconds)
    for batch in inflight:
        batch.wait_all(timeout=60)
    figures = {"requests_per_s": count / elapsed, "gbps": count * size / elapsed / 1e9, "queue_depth": depth * 2}
    if cpu0 is not None:
        figures["daemon_cpu_pct_of_one_core"] = round(100 * (cpu_seconds(daemon_pid) - cpu0) / elapsed, 1)
    client.free(region)
    return figures
