"""Shared set-up for the GPU tests: lavapipe as the Vulkan driver, the conformance folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

LAVAPIPE_ICD = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"
REPO = Path(__file__).resolve().parents[1]


def use_lavapipe() -> None:
    """Points the Vulkan loader at Mesa lavapipe unless the caller chose a driver: CI has no GPU,
    and the tests must not depend on whichever GPU a developer's machine has."""
    if os.path.exists(LAVAPIPE_ICD) and not (os.environ.get("VK_ICD_FILENAMES") or os.environ.get("VK_DRIVER_FILES")):
        os.environ["VK_ICD_FILENAMES"] = LAVAPIPE_ICD
        os.environ["VK_DRIVER_FILES"] = LAVAPIPE_ICD


def conformance_dir() -> Path | None:
    """The shared GDeflate conformance set (../shared beside the checkout), else the subset in
    tests/data/gpu; None when neither exists. DSD_TEST_CONFORMANCE_DIR picks one explicitly."""
    override = os.environ.get("DSD_TEST_CONFORMANCE_DIR")
    cands = [Path(override)] if override else [REPO.parent / "shared" / "conformance" / "gdeflate", REPO / "tests" / "data" / "gpu"]
    for cand in cands:
        if (cand / "MANIFEST.tsv").exists():
            return cand
    return None


def manifest(folder: Path) -> dict[str, str]:
    rows = (folder / "MANIFEST.tsv").read_text().splitlines()[1:]
    out = {}
    for row in rows:
        cols = row.split("\t")
        if len(cols) >= 5 and (folder / cols[0]).exists():
            out[cols[0]] = cols[4]
    return out


def malformed(folder: Path) -> list[str]:
    path = folder / "MALFORMED.tsv"
    if not path.exists():
        return []
    names = [row.split("\t")[0] for row in path.read_text().splitlines()[1:] if row.strip()]
    return [n for n in names if (folder / n).exists()]


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    """One GpuDecoder per test module (lavapipe in CI), with its own pipeline cache; SKIPs with
    the reason when no Vulkan device opens. Test modules import it by name."""
    gpu = pytest.importorskip("dsd.daemon.gpu")
    try:
        dec = gpu.GpuDecoder(cache_dir=str(tmp_path_factory.mktemp("vkcache")))
    except gpu.GpuUnavailable as exc:
        pytest.skip(f"no Vulkan device: {exc}")
    yield dec
    dec.close()
