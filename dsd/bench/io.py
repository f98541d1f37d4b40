"""``dsd bench io``: the io engine against fio on the same file, in the same run.

Contenders, like with like: for each worker count W (``--workers``, default 1 and the core count)
every contender gets W threads and the case's total queue depth QD, on one file:
  fio        fio --ioengine=io_uring, numjobs=W, iodepth=QD/W each (the kernel's speed, the baseline)
  dsd-uring  dsd._native.IoEngine(backend="uring", workers=W, queue_depth=QD/W), as the daemon
             runs it: W rings plus the mapped read path (cached pages copied from a mapping of
             the file, native/io_mapped.c), driven like the daemon drives it: packed batches in,
             packed completions out, the eventfd polled between batches
  dsd-uring-nomap  the same with mapped="off": what the rings alone do (page-cache cases only;
             O_DIRECT reads never take the mapped path)
  dsd-posix  the pread pool: the same engine with W threads calling pread (W reads in flight: a
             pool's depth is its thread count), mapped="off" - the baseline the 2x target is
             measured against
The driver keeps QD requests queued in the engine behind the QD in the kernel, as a busy daemon
does. Each contender also reports its CPU time per I/O (fio: the fio process; dsd: the whole
process, ring or pool threads plus the Python driver), since on a small shared machine the
cheaper path is the one that leaves the most CPU to everything else. ``--repeat N`` (default 5)
runs the contenders N times, a different one first each turn, and reports the median of the
per-turn ratios with their spread (every sample in ``--json``): on a shared machine one turn swings
with the neighbours' load, the median of ratios taken within a turn much less.

Cases: 64 KiB and 1 MiB sequential reads at QD32, 4 KiB random reads at QD64; each through the
page cache (file pre-warmed, fio with --invalidate=0 so it does not drop the cache) and with
O_DIRECT where the filesystem allows it. Prints GB/s and IOPS with ratios against fio (and of
dsd-uring against dsd-posix); ``--json`` prints one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from ._common import make_test_file, warm_page_cache

CASES = [
    # name, block size, queue depth, random
    ("seq-64k-qd32", 64 * 1024, 32, False),
    ("seq-1m-qd32", 1024 * 1024, 32, False),
    ("rand-4k-qd64", 4 * 1024, 64, True),
]
CONTENDERS = ("fio", "dsd-uring", "dsd-uring-nomap", "dsd-posix")


@dataclass
class Result:
    gbps: float
    iops: float
    seconds: float
    ios: int
    note: str = ""
    driver_cpu_us: float | None = None  # Python CPU per request (submit + reap), dsd contenders
    cpu_us: float | None = None  # CPU time per I/O of the whole contender (all its threads)

    def as_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"note": self.note} if self.note else {}
        if self.driver_cpu_us is not None:
            extra["python_cpu_us_per_request"] = round(self.driver_cpu_us, 3)
        if self.cpu_us is not None:
            extra["cpu_us_per_io"] = round(self.cpu_us, 3)
        return {"GB/s": round(self.gbps, 3), "IOPS": round(self.iops), "seconds": round(self.seconds, 3),
                "ios": self.ios, **extra}


def _parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().rstrip("ib")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def _drop_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run_fio(path: str, size: int, bs: int, qd: int, rand: bool, direct: bool, seconds: float,
            workers: int = 1) -> Result:
    """fio with `workers` jobs of iodepth qd/workers, each on its own slice of the file."""
    share = size // workers // bs * bs
    cmd = [
        "fio", "--name=dsd-bench", f"--filename={path}", "--ioengine=io_uring", "--thread",
        f"--rw={'randread' if rand else 'read'}", f"--bs={bs}", f"--iodepth={max(1, qd // workers)}",
        f"--size={share}", f"--offset_increment={share}",
        f"--direct={1 if direct else 0}", "--invalidate=0", "--time_based",
        f"--runtime={max(1, round(seconds))}s", f"--numjobs={workers}", "--group_reporting",
        "--output-format=json", "--randrepeat=0", "--norandommap",
    ]
    t0 = os.times()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds * 4 + 60).stdout
    t1 = os.times()
    job = json.loads(out[out.index("{"):])["jobs"][0]["read"]
    secs = job["runtime"] / 1000.0
    ios = int(job["total_ios"])
    res = Result(job["bw_bytes"] / 1e9, job["iops"], secs, ios, f"numjobs={workers}, iodepth={max(1, qd // workers)}")
    cpu = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    res.cpu_us = cpu / max(ios, 1) * 1e6
    return res


BACKLOG = 8  # requests submitted per unit of queue depth (see run_dsd)


def run_dsd(
    path: str, size: int, bs: int, qd: int, rand: bool, direct: bool, seconds: float, backend: str,
    register: str = "auto", workers: int = 1, mapped: str = "auto",
) -> Result:
    from dsd import _native
    from dsd.ioengine import REQUEST

    nslots = qd  # as much destination memory as fio uses for its buffers (iodepth x bs)
    if rand:
        rng = random.Random(1)
        nblocks = size // bs
        offsets = [rng.randrange(nblocks) * bs for _ in range(1 << 16)]
    else:
        offsets = [i * bs for i in range(size // bs)]
    blob = bytearray(REQUEST.size * len(offsets))
    for i, off in enumerate(offsets):
        REQUEST.pack_into(blob, i * REQUEST.size, i, 0, off, bs, 1, (i % nslots) * bs, bs, 1, 0,
                          0, 0, 0, 0, 0, 0, 0, 0)
    table = memoryview(bytes(blob))
    nrec = len(offsets)

    shm_path = f"/dev/shm/dsd-bench-io-{os.getpid()}"
    shm = os.open(shm_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.unlink(shm_path)
    fd = os.open(path, os.O_RDONLY)
    # queue_depth is per ring: W rings share the case's total depth, as fio's W jobs do
    eng = _native.IoEngine(backend=backend, workers=workers, queue_depth=max(1, qd // workers),
                           direct="auto" if direct else "off", register=register, mapped=mapped)
    reg = _native.Registry()
    try:
        os.ftruncate(shm, nslots * bs)
        reg.add_file(1, fd)
        reg.add_region(1, shm, nslots * bs)
        view = reg.region_view(1)
        view[:] = bytes(len(view))  # fault the destination in before timing, as a long-lived region is
        view.release()
        submit, reap, key = eng.submit, eng.reap, 1
        poller = select.poll()
        poller.register(eng.fileno(), select.POLLIN)
        pos = 0

        def send(k: int) -> None:
            nonlocal pos
            while k:
                m = min(k, nrec - pos)
                submit(reg, key, table[pos * 64:(pos + m) * 64])
                pos = (pos + m) % nrec
                k -= m

        done = failed = 0
        # The engine keeps at most `qd` reads in the kernel (queue_depth), like fio's iodepth; the
        # client keeps BACKLOG x qd requests submitted, the rest queued behind them in memory, so
        # a ring refills its queue without waiting for a round trip through this loop, and this
        # loop wakes once per BACKLOG/2 x qd completions (coalesce="halves"), not per qd: on two
        # cores the driver competes with the rings (4 KiB QD64 page cache, W=2: 1.05 -> 1.48 of
        # fio with 8 instead of 2; docs/io-engine.md).
        backlog = BACKLOG * qd
        send(backlog)
        outstanding = backlog
        start = time.perf_counter()
        cpu_start = time.thread_time()  # this (driver) thread only: what the daemon's loop would pay
        proc_start = os.times()  # every thread: the rings or the pool, and this driver
        deadline = start + seconds
        while True:
            poller.poll(100)
            got = 0
            for _, data, _failed in reap():
                got += len(data) >> 5
            if not got:
                continue
            done += got
            outstanding -= got
            now = time.perf_counter()
            if now >= deadline:
                break
            send(got)
            outstanding += got
        elapsed = time.perf_counter() - start
        driver_cpu = time.thread_time() - cpu_start
        proc_end = os.times()
        while outstanding:
            poller.poll(100)
            for _, data, _failed in reap():
                outstanding -= len(data) >> 5
        st = eng.stats()
        failed = st["failed"] + st["cancelled"]
        if failed:
            raise RuntimeError(f"{failed} reads failed during the benchmark: {st}")
        note = (f"workers={eng.workers}, queue_depth={st['queue_depth']}, queued={backlog}, "
                f"direct_reads={st['direct_reads']}, buffered_reads={st['buffered_reads']}, "
                f"mapped_reads={st['mapped_reads']}")
        res = Result(done * bs / elapsed / 1e9, done / elapsed, elapsed, done, note)
        res.driver_cpu_us = driver_cpu / max(done, 1) * 1e6
        res.cpu_us = ((proc_end.user - proc_start.user) + (proc_end.system - proc_start.system)) / max(done, 1) * 1e6
        return res
    finally:
        eng.close()
        reg.close()
        os.close(fd)
        os.close(shm)


def _targets(cases: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, checked against this run: dsd-uring >= 95% of fio's GB/s in every case,
    and >= 2x the pread pool's IOPS for 4 KiB random reads at QD64."""
    out = []
    for name, case in cases.items():
        ratios = case["ratios"]
        spread = case.get("ratio_spread", {})
        for what, want in (("dsd-uring/fio GB/s", 0.95), ("dsd-uring/dsd-posix IOPS", 2.0)):
            if what not in ratios or (what.endswith("IOPS") and not name.startswith("rand-4k-qd64")):
                continue
            got = ratios[what]
            row = {"case": name, "what": what, "want": want, "got": got, "met": got >= want}
            if what in spread:
                row["turns"] = spread[what]
            out.append(row)
    return out


def _ratios(figures: dict[str, Any]) -> dict[str, float]:
    ratios = {}
    fio = figures.get("fio", {})
    for contender in ("dsd-uring", "dsd-uring-nomap", "dsd-posix"):
        mine = figures.get(contender, {})
        if "GB/s" in fio and "GB/s" in mine and fio["GB/s"]:
            ratios[f"{contender}/fio GB/s"] = round(mine["GB/s"] / fio["GB/s"], 3)
    u, p = figures.get("dsd-uring", {}), figures.get("dsd-posix", {})
    if "IOPS" in u and "IOPS" in p and p["IOPS"]:
        ratios["dsd-uring/dsd-posix IOPS"] = round(u["IOPS"] / p["IOPS"], 3)
    n = figures.get("dsd-uring-nomap", {})
    if "IOPS" in n and "IOPS" in p and p["IOPS"]:
        ratios["dsd-uring-nomap/dsd-posix IOPS"] = round(n["IOPS"] / p["IOPS"], 3)
    if u.get("cpu_us_per_io") and p.get("cpu_us_per_io"):
        # > 1: a read through the rings costs less CPU than one through the pool
        ratios["dsd-posix/dsd-uring CPU per I/O"] = round(p["cpu_us_per_io"] / u["cpu_us_per_io"], 3)
    return ratios


def _median_figures(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The median sample by IOPS (its own CPU and notes kept together), plus the spread."""
    ok = [f for f in samples if "IOPS" in f]
    if not ok:
        return samples[-1]
    ok.sort(key=lambda f: f["IOPS"])
    med = dict(ok[(len(ok) - 1) // 2]) if len(ok) % 2 else dict(ok[len(ok) // 2 - 1])
    if len(ok) % 2 == 0:  # even count: the mean of the middle two for the headline figures
        hi = ok[len(ok) // 2]
        for key in ("GB/s", "IOPS", "cpu_us_per_io"):
            if key in med and key in hi:
                med[key] = round((med[key] + hi[key]) / 2, 3)
    if len(samples) > 1:
        med["samples_IOPS"] = [round(f["IOPS"]) for f in ok]
    return med


def run(args: argparse.Namespace) -> int:
    from dsd import _native

    size = _parse_size(args.size)
    directory = args.dir or tempfile.gettempdir()
    free = shutil.disk_usage(directory).free
    if size > free // 2:
        size = max(64 << 20, (free // 4) // (1 << 20) * (1 << 20))
    have_fio = shutil.which("fio") is not None
    uring_ok, uring_why = _native.io_uring_probe()
    direct_ok, direct_why = _native.odirect_probe(directory)
    path = str(make_test_file(size, directory, prefix="dsd-bench-io"))
    ncpu = os.cpu_count() or 1
    worker_counts = sorted({min(int(w), 64) if int(w) > 0 else ncpu for w in args.workers.split(",")})

    report: dict[str, Any] = {
        "benchmark": "io", "file": path, "file_size": size, "seconds_per_run": args.seconds,
        "repeat": args.repeat, "workers": worker_counts, "cpus": ncpu,
        "io_uring": {"usable": uring_ok, "reason": uring_why},
        "o_direct": {"usable": direct_ok, "reason": direct_why},
        "fio": shutil.which("fio") or None,
        "cases": {},
    }
    modes = ["pagecache"] + (["direct"] if direct_ok else [])
    for workers in worker_counts:
        for mode in modes:
            direct = mode == "direct"
            for name, bs, qd, rand in CASES:
                if args.case and not any(c in name for c in args.case):
                    continue
                # the single-worker rows keep the plain case names; more workers get a -wN suffix
                case_name = f"{name}-{mode}" + (f"-w{workers}" if workers > 1 else "")
                samples: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
                ratio_samples: list[dict[str, float]] = []
                for turn in range(max(1, args.repeat)):
                    figures: dict[str, Any] = {}
                    # a different contender goes first each turn, so a neighbour's burst of load
                    # (or the cache state one run leaves) does not always fall on the same one
                    shift = turn % len(CONTENDERS)
                    for contender in CONTENDERS[shift:] + CONTENDERS[:shift]:
                        if direct:
                            _drop_cache(path)
                        else:
                            warm_page_cache(path)
                        try:
                            if contender == "fio":
                                if not have_fio:
                                    figures[contender] = {"skipped": "fio not installed"}
                                    continue
                                res = run_fio(path, size, bs, qd, rand, direct, args.seconds, workers)
                            elif contender.startswith("dsd-uring"):
                                if not uring_ok:
                                    figures[contender] = {"skipped": uring_why}
                                    continue
                                nomap = contender == "dsd-uring-nomap"
                                if nomap and direct:
                                    figures[contender] = {"skipped": "O_DIRECT reads never take the mapped path"}
                                    continue
                                res = run_dsd(path, size, bs, qd, rand, direct, args.seconds, "uring",
                                              workers=workers, mapped="off" if nomap else "auto")
                            else:
                                res = run_dsd(path, size, bs, qd, rand, direct, args.seconds, "posix",
                                              workers=workers, mapped="off")
                            figures[contender] = res.as_dict()
                        except (OSError, subprocess.SubprocessError, RuntimeError, ValueError) as e:
                            figures[contender] = {"error": str(e)}
                    for contender in CONTENDERS:
                        samples[contender].append(figures[contender])
                    ratio_samples.append(_ratios(figures))
                figures = {c: _median_figures(samples[c]) for c in CONTENDERS}
                # ratios: the median of the per-repetition ratios (each against fio of the same turn)
                ratios, spread = {}, {}
                for key in ratio_samples[0]:
                    vals = sorted(r[key] for r in ratio_samples if key in r)
                    ratios[key] = round(statistics.median(vals), 3)
                    spread[key] = [vals[0], vals[-1]]
                report["cases"][case_name] = {"block_size": bs, "queue_depth": qd, "workers": workers,
                                              "random": rand, "mode": mode, "contenders": figures,
                                              "ratios": ratios}
                if args.repeat > 1:
                    report["cases"][case_name]["ratio_spread"] = spread  # [lowest, highest] turn
                    report["cases"][case_name]["ratio_samples"] = ratio_samples
                if not args.json:
                    print(f"{case_name:27s}", end="")
                    for contender in CONTENDERS:
                        f = figures[contender]
                        if "GB/s" in f:
                            cpu = f" {f['cpu_us_per_io']:.2f}us/io" if "cpu_us_per_io" in f else ""
                            print(f"  {contender} {f['GB/s']:6.2f} GB/s {f['IOPS'] / 1000:7.1f}k IOPS{cpu}", end="")
                        else:
                            print(f"  {contender} -", end="")
                    print("  " + ", ".join(f"{k} {v:.2f}" + (f" [{spread[k][0]:.2f}-{spread[k][1]:.2f}]"
                                                                   if args.repeat > 1 else "")
                                           for k, v in ratios.items()), flush=True)
    report["targets"] = _targets(report["cases"])
    if not args.json:
        for t in report["targets"]:
            turns = f" (turns {t['turns'][0]}-{t['turns'][1]})" if "turns" in t else ""
            print(f"target {t['case']}: {t['what']} >= {t['want']}: {t['got']}{turns} {'met' if t['met'] else 'MISSED'}")
    if not args.keep:
        os.unlink(path)
    if args.json:
        json.dump(report, sys.stdout)
        print()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("io", help="io engine (io_uring, pread pool) against fio on one file")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every case and contender")
    parser.add_argument("--size", default="1G", help="test file size (default 1G; shrunk when the disk is short)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="seconds per contender, case and turn (default 1: more short turns give steadier "
                             "medians on a shared machine than a few long ones)")
    parser.add_argument("--dir", default=None, help="directory for the test file (default: the temp dir)")
    parser.add_argument("--case", action="append", help="only cases whose name contains this (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the test file for the next run")
    parser.add_argument("--workers", default="1,0",
                        help="comma-separated worker counts; each gives every contender that many threads "
                             "(fio numjobs, dsd rings, pread threads) sharing the case's queue depth; "
                             "0 = one per core (default 1,0)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="turns: the contenders run this many times, a different one first each turn; "
                             "medians and the spread of the per-turn ratios are reported (default 5)")
    parser.set_defaults(func=run)
