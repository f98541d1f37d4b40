"""Host-side parts of GPU decoding that need no Vulkan device: SPIR-V checks, the container
header check, DSD_DECODE selection, and the Python GDeflate model the GPU tests lean on."""

from __future__ import annotations

import struct

import pytest

from dsd.daemon.gpu import errors as E
from dsd.daemon.gpu import spirv
from dsd.daemon.gpu.container import plan_stream
from dsd.daemon.gpu.selection import choose_decoder, decode_mode, decode_mode_set
from gpu_support import conformance_dir


def test_built_shaders_are_valid_spirv():
    for name in ("gdeflate_wave32", "gdeflate_wave32_coherent", "gdeflate_lanes_shared"):
        code = spirv.load_spirv(name)
        assert len(code) % 4 == 0 and struct.unpack_from("<I", code)[0] == spirv.SPIRV_MAGIC


@pytest.mark.parametrize("blob", [b"", b"\x03\x02\x23\x07" * 4 + b"\x00", b"\x00" * 64])
def test_spirv_check_rejects_bad_blobs(blob):
    with pytest.raises(E.GpuUnavailable):
        spirv.validate_spirv(blob)


def header(n: int, last: int, idx: int = 1, codec: int = 4, magic: int = 0xFB) -> bytes:
    return bytes([codec, magic]) + struct.pack("<HI", n, idx | (last << 2))


@pytest.mark.parametrize(
    "blob",
    [
        b"\x04\xfb",
        header(1, 5, codec=5, magic=0xFA),
        header(1, 5, magic=0),
        header(1, 5, idx=2) + bytes(4),
        header(4, 5) + bytes(6),
        header(65535, 0) + bytes(8),
        header(0, 7),
    ],
)
def test_container_check_rejects_bad_headers(blob):
    with pytest.raises(E.GpuDecodeError) as info:
        plan_stream(memoryview(blob), None)
    assert info.value.code == E.E_CONTAINER


def test_container_sizes():
    assert plan_stream(memoryview(header(2, 1) + bytes(8)), 65537).out_len == 65537
    assert plan_stream(memoryview(header(1, 0) + bytes(4)), None).out_len == 65536
    assert plan_stream(memoryview(header(0, 0)), 0).out_len == 0
    with pytest.raises(E.GpuDecodeError) as info:
        plan_stream(memoryview(header(1, 3) + bytes(4)), 4)
    assert info.value.code == E.E_SIZE_MISMATCH


def test_decode_mode_env_and_context(monkeypatch):
    monkeypatch.delenv("DSD_DECODE", raising=False)
    assert decode_mode() == "auto"
    with decode_mode_set("cpu"):
        assert decode_mode() == "cpu"
        with decode_mode_set("gpu"):
            assert decode_mode() == "gpu"
        assert decode_mode() == "cpu"
    assert decode_mode() == "auto"
    monkeypatch.setenv("DSD_DECODE", "vulkan")
    assert decode_mode() == "gpu"
    monkeypatch.setenv("DSD_DECODE", "fpga")
    with pytest.raises(ValueError):
        decode_mode()


def test_auto_rules(monkeypatch):
    monkeypatch.delenv("DSD_DECODE_GPU_MIN_BYTES", raising=False)
    assert choose_decoder(1 << 30, gpu_kind="discrete", mode="auto").backend == "gpu"
    assert choose_decoder(1 << 10, gpu_kind="discrete", mode="auto").backend == "cpu"
    assert choose_decoder(1 << 30, gpu_kind="cpu", mode="auto").backend == "cpu"
    assert choose_decoder(1 << 30, gpu_kind=None, mode="auto").backend == "cpu"
    assert choose_decoder(1, gpu_kind="discrete", mode="gpu").backend == "gpu"
    assert choose_decoder(1 << 30, gpu_kind="discrete", mode="cpu").backend == "cpu"
    monkeypatch.setenv("DSD_DECODE_GPU_MIN_BYTES", "10")
    assert choose_decoder(11, gpu_kind="integrated", mode="auto").backend == "gpu"


def test_python_model_decodes_the_doc_vectors():
    from gpu_gdeflate_model import decode_tile

    assert decode_tile(bytes.fromhex("73040000") + bytes(33 * 4), 1) == b"A"
    tile = bytes.fromhex("4b040000 49000000 c9000000 89000000 c4210000") + bytes(33 * 4)
    assert decode_tile(tile, 42) == b"abc" * 14


@pytest.mark.skipif(conformance_dir() is None, reason="no conformance set")
def test_python_model_matches_a_conformance_original():
    from gpu_gdeflate_model import decode_stream

    conf = conformance_dir()
    assert decode_stream((conf / "text-65537.9.gdef").read_bytes()) == (conf / "text-65537.bin").read_bytes()


def test_gpu_command_prints_the_choice(capsys):
    import json

    from gpu_support import use_lavapipe

    use_lavapipe()
    from dsd.cli import main

    rc = main(["gpu", "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["mode"] in ("gpu", "cpu", "auto")
    if rc == 0:
        assert info["device"]["name"] and info["shader"]["variant"] in ("wave32", "shared")
    else:
        assert "unavailable" in info
