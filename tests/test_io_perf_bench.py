"""`dsd bench io` compares like with like: per worker count, fio's jobs and iodepth, the engine's
rings and queue depth, and the pread pool's threads all match; repeats report medians.
(Speed targets live in the benchmark; this checks its shape on a small file.)"""

from __future__ import annotations

import json
import shutil

import pytest

from dsd.cli import main

pytestmark = pytest.mark.timeout(240)


def _bench(tmp_path, capsys, *extra: str) -> dict:
    rc = main(["bench", "io", "--json", "--size", "64M", "--seconds", "0.2", "--case", "rand-4k",
               "--dir", str(tmp_path), *extra])
    assert rc == 0
    return json.loads(capsys.readouterr().out)


def test_workers_and_depth_match_across_contenders(tmp_path, capsys):
    report = _bench(tmp_path, capsys, "--workers", "1,2", "--repeat", "2")
    assert report["workers"] == [1, 2] and report["repeat"] == 2
    names = set(report["cases"])
    assert {"rand-4k-qd64-pagecache", "rand-4k-qd64-pagecache-w2"} <= names
    for name, case in report["cases"].items():
        w, qd = case["workers"], case["queue_depth"]
        assert name.endswith(f"-w{w}") == (w > 1)
        figures = case["contenders"]
        posix = figures["dsd-posix"]
        assert posix["note"].startswith(f"workers={w}, ")
        assert posix["cpu_us_per_io"] > 0 and len(posix["samples_IOPS"]) == 2
        if report["io_uring"]["usable"]:
            uring = figures["dsd-uring"]
            # W rings share the case's depth, as fio's W jobs do
            assert uring["note"].startswith(f"workers={w}, queue_depth={qd // w}, ")
            assert uring["cpu_us_per_io"] > 0
            assert "dsd-posix/dsd-uring CPU per I/O" in case["ratios"]
        if shutil.which("fio"):
            fio = figures["fio"]
            assert fio["note"] == f"numjobs={w}, iodepth={qd // w}"
            assert fio["cpu_us_per_io"] > 0
            assert len(case["ratio_samples"]) == 2
            # the reported ratio is the median of the per-turn ratios, each against fio of that turn
            turns = sorted(t["dsd-posix/fio GB/s"] for t in case["ratio_samples"])
            assert case["ratios"]["dsd-posix/fio GB/s"] == pytest.approx(sum(turns) / 2, abs=1e-3)
    targets = {(t["case"], t["what"]) for t in report["targets"]}
    if report["io_uring"]["usable"]:
        assert ("rand-4k-qd64-pagecache-w2", "dsd-uring/dsd-posix IOPS") in targets


def test_core_count_default(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    report = _bench(tmp_path, capsys, "--workers", "0")
    assert report["workers"] == [3] and report["cpus"] == 3
    assert set(report["cases"]) >= {"rand-4k-qd64-pagecache-w3"}
