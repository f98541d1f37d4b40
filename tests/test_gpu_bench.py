"""`dsd bench gpu` as a smoke test: tiny batch on lavapipe, JSON holds every contender."""

from __future__ import annotations

import json

import pytest

from gpu_support import conformance_dir, use_lavapipe

use_lavapipe()


@pytest.mark.skipif(conformance_dir() is None, reason="no conformance set for --data")
def test_bench_gpu_json_smoke(capsys, tmp_path):
    pytest.importorskip("vulkan")
    from dsd.cli import main

    conf = conformance_dir()
    files = [str(conf / n) for n in ("text-65537.9.gdef", "rand-65535.9.gdef")]
    rc = main(["bench", "gpu", "--json", "--mib", "1", "--repeat", "1", "--no-nvcomp", "--dir", str(tmp_path),
               "--data", *files])
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    if rc != 0 and "no Vulkan GPU" in report.get("error", ""):
        pytest.skip(report["error"])
    assert rc == 0, report
    c = report["contenders"]
    assert c["gpu-shader"]["output_matches"] is True and c["gpu-shader"]["gbps"] > 0
    assert c["gpu-file-host"]["output_matches"] is True
    assert c["zlib-64k"]["gbps"] > 0
    assert "available" in c["cpu-codec"] and "available" in c["gpu-nv"]
    assert c["dispatch"]["batch_host_us"] > 0
    assert report["data"]["decoded_bytes"] >= 1 << 20
