"""`dsd bench read` runs end to end against its own daemon (smoke test; targets live in the benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.timeout(180)
def test_bench_read_json(tmp_path):
    res = subprocess.run([sys.executable, "-m", "dsd", "bench", "read", "--json", "--seconds", "0.2",
                          "--file-size", str(16 << 20)], capture_output=True, timeout=170,
                         env={"TMPDIR": str(tmp_path), **{k: v for k, v in __import__("os").environ.items()
                                                          if k != "TMPDIR"}})
    assert res.returncode == 0, res.stderr.decode()
    report = json.loads(res.stdout)
    assert report["benchmark"] == "read"
    cases = report["cases"]
    assert set(cases) == {"4k-random", "1m-sequential", "4k-paced-50k-per-s"}
    for case in ("4k-random", "1m-sequential"):
        dsd, base = cases[case]["dsd"], cases[case]["preadv"]
        assert dsd["requests_per_s"] > 0 and base["requests_per_s"] > 0
        # the report rounds the ratio to 3 decimals: allow that step as well as 1 %
        assert dsd["ratio_vs_preadv"] == pytest.approx(dsd["gbps"] / base["gbps"], rel=1e-2, abs=5e-4)
        assert 0 <= dsd["daemon_cpu_pct_of_one_core"] <= 200
    assert cases["4k-paced-50k-per-s"]["dsd"]["target_cpu_pct"] == 10
