"""`dsd bench iocodec` runs end to end (smoke test on 2 MiB; speed targets live in the benchmark)."""

from __future__ import annotations

import json

import pytest

from dsd.cli import main

pytestmark = pytest.mark.timeout(120)


def test_bench_iocodec_json(tmp_path, capsys):
    assert main(["bench", "iocodec", "--json", "--size", "2", "--repeat", "1", "--dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["case"] == "iocodec" and report["payload_bytes"] == 2 << 20
    assert set(report["cases"]) == {"read-gdeflate", "read-zstd", "write-zstd", "write-plain"}
    for case in report["cases"].values():
        assert "dsd-posix" in case["contenders"]
        assert all(v["mb_per_s"] > 0 for v in case["contenders"].values())
        assert case["ratios"] and all(r > 0 for r in case["ratios"].values())
    assert not list(tmp_path.iterdir())  # test files removed
