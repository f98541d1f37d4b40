"""`dsd bench io` runs end to end (smoke test on a small file; speed targets live in the benchmark)."""

from __future__ import annotations

import json
import shutil

import pytest

from dsd.cli import main

pytestmark = pytest.mark.timeout(120)


def test_bench_io_json(tmp_path, capsys):
    rc = main(["bench", "io", "--json", "--size", "64M", "--seconds", "0.3", "--case", "rand-4k",
               "--dir", str(tmp_path), "--repeat", "2", "--workers", "1"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "io" and report["file_size"] == 64 << 20
    assert "rand-4k-qd64-pagecache" in report["cases"]
    for case in report["cases"].values():
        figures = case["contenders"]
        assert set(figures) == {"fio", "dsd-uring", "dsd-uring-nomap", "dsd-posix"}
        assert figures["dsd-posix"]["IOPS"] > 0
        assert "mapped_reads=0" in figures["dsd-posix"]["note"]
        if report["io_uring"]["usable"]:
            assert figures["dsd-uring"]["IOPS"] > 0
            assert "dsd-uring/dsd-posix IOPS" in case["ratios"]
            if case["mode"] == "pagecache":  # the mapped path took the engine's cached reads, not the pool's
                assert figures["dsd-uring"]["note"].count("mapped_reads=0") == 0
                assert "mapped_reads=0" in figures["dsd-uring-nomap"]["note"]
                assert "dsd-uring-nomap/dsd-posix IOPS" in case["ratios"]
            else:
                assert "skipped" in figures["dsd-uring-nomap"]
        else:
            assert "skipped" in figures["dsd-uring"]
        if shutil.which("fio"):
            assert figures["fio"]["IOPS"] > 0 and "dsd-posix/fio GB/s" in case["ratios"]
        if case["ratios"]:
            assert set(case["ratio_spread"]) == set(case["ratios"])  # two turns: [lowest, highest]
            assert all(lo <= case["ratios"][k] <= hi for k, (lo, hi) in case["ratio_spread"].items())
    assert not list(tmp_path.glob("dsd-bench-io-*"))  # the test file is removed unless --keep
