"""Smoke test of ``dsd bench codec``: runs, prints one JSON object with every case and contender."""

from __future__ import annotations

import json

import pytest

from dsd.cli import main


def test_bench_codec_json(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one object: decode cases (GDeflate 1/all threads, zlib, zstd), ratios, encode levels."""
    assert main(["bench", "codec", "--json", "--repeat", "1", "--levels", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["case"] == "codec" and out["corpus"]["bytes"] == 8_400_000
    assert set(out["decode"]) == {
        "gdeflate_l9_1thread", "gdeflate_l9_allthreads", "zlib6_64k_1thread", "zlib6_64k_allthreads", "zstd3_frame_1thread",
    }
    assert all(v["mb_per_s"] > 0 for v in out["decode"].values())
    assert out["ratios"]["gdeflate_vs_zlib_1thread"] > 0
    assert out["encode"]["gdeflate_l1"]["reference_bytes"] == 2_512_368
    assert "zlib6_64k" in out["encode"]


def test_bench_codec_text(capsys: pytest.CaptureFixture[str]) -> None:
    """The human-readable report names the zlib ratio."""
    assert main(["bench", "codec", "--repeat", "1", "--levels", "0"]) == 0
    text = capsys.readouterr().out
    assert "GDeflate vs zlib" in text and "gdeflate_l0" in text
