"""``dsd compress`` / ``dsd decompress`` as a user runs them (subprocess ``python -m dsd``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from test_gdeflate_roundtrip import make_data

ROOT = Path(__file__).resolve().parent.parent
LOCAL = Path(__file__).resolve().parent / "data" / "gdeflate"


def dsd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dsd", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("fmt,level", [("gdeflate", "1"), ("gdeflate", "9"), ("zstd", "3")])
def test_round_trip(tmp_path: Path, fmt: str, level: str) -> None:
    """compress then decompress (format detected) gives the original file back."""
    data = make_data("mixed", 9 * 65536 * 16 + 12345, 3)  # > one 8 MiB chunk: splicing is exercised
    src, packed, back = tmp_path / "in.bin", tmp_path / "in.pack", tmp_path / "out.bin"
    src.write_bytes(data)
    r = dsd("compress", "--format", fmt, "--level", level, "--threads", "2", str(src), str(packed))
    assert r.returncode == 0, r.stderr
    r = dsd("decompress", str(packed), str(back))
    assert r.returncode == 0, r.stderr
    assert back.read_bytes() == data


def test_spliced_file_matches_one_shot(tmp_path: Path) -> None:
    """A multi-chunk file is byte-identical to compressing the payload in one call."""
    from dsd.codec import gdeflate

    data = make_data("text", 8 * 2**20 + 70000, 9)
    src, packed = tmp_path / "in.bin", tmp_path / "in.gdef"
    src.write_bytes(data)
    assert dsd("compress", "--level", "4", str(src), str(packed)).returncode == 0
    assert packed.read_bytes() == gdeflate.compress(data, level=4)


def test_empty_file(tmp_path: Path) -> None:
    """Empty input -> the 8-byte empty stream -> empty output."""
    src, packed, back = tmp_path / "e", tmp_path / "e.gdef", tmp_path / "e.out"
    src.write_bytes(b"")
    assert dsd("compress", str(src), str(packed)).returncode == 0
    assert packed.read_bytes() == bytes.fromhex("04fb000001000000")
    assert dsd("decompress", str(packed), str(back)).returncode == 0
    assert back.read_bytes() == b""


def test_progress_bar_on_stderr(tmp_path: Path) -> None:
    """--progress draws a bar on stderr, stdout stays clean."""
    src, packed = tmp_path / "in.bin", tmp_path / "in.gdef"
    src.write_bytes(make_data("text", 300_000, 1))
    r = dsd("compress", "--progress", str(src), str(packed))
    assert r.returncode == 0 and "100.0%" in r.stderr and r.stdout == ""


@pytest.mark.parametrize("name", ["bad-lasttilesize.gdef", "bad-truncated-tile-data.gdef", "bad-magic.gdef"])
def test_bad_input_one_line_error(tmp_path: Path, name: str) -> None:
    """Corrupt input: exit status 1, one line on stderr, no traceback, no output left behind."""
    out = tmp_path / "out.bin"
    r = dsd("decompress", str(LOCAL / name), str(out))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "error" in r.stderr
    assert not out.exists()


def test_bad_options_and_paths(tmp_path: Path) -> None:
    """Missing files, bad levels and IN == OUT are clear errors."""
    src = tmp_path / "in.bin"
    src.write_bytes(b"hello" * 100)
    for args in (
        ["compress", str(tmp_path / "missing"), str(tmp_path / "o")],
        ["compress", "--level", "13", str(src), str(tmp_path / "o")],
        ["compress", str(src), str(src)],
        ["decompress", str(src), str(tmp_path / "o")],
    ):
        r = dsd(*args)
        assert r.returncode == 1, args
        assert "Traceback" not in r.stderr and r.stderr.startswith("dsd ")
    assert src.read_bytes() == b"hello" * 100


def test_in_process_round_trip_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same commands through dsd.cli.main (in-process): round trips, progress, clean errors."""
    from dsd.cli import main

    data = make_data("mixed", 700_000, 8)
    src, packed, back = tmp_path / "a.bin", tmp_path / "a.pack", tmp_path / "a.out"
    src.write_bytes(data)
    for fmt in ("gdeflate", "zstd"):
        assert main(["compress", "--format", fmt, "--progress", str(src), str(packed)]) == 0
        assert main(["decompress", "--threads", "1", "--progress", str(packed), str(back)]) == 0
        assert back.read_bytes() == data
    err = capsys.readouterr().err
    assert "100.0%" in err and "ratio" in err
    bad = bytearray((tmp_path / "a.pack").read_bytes())
    bad[-3] ^= 0xFF
    (tmp_path / "bad.zst").write_bytes(bytes(bad))
    assert main(["decompress", str(tmp_path / "bad.zst"), str(back)]) == 1
    assert "error" in capsys.readouterr().err and not back.exists()
    stream = (LOCAL / "mixed-196625.9.gdef").read_bytes()
    (tmp_path / "t.gdef").write_bytes(stream[:-40])
    assert main(["decompress", str(tmp_path / "t.gdef"), str(back)]) == 1
    corrupt = bytearray(stream)
    data_start = 8 + 4 * 4  # 4 tiles
    corrupt[data_start + 200 :] = b"\xff" * (len(corrupt) - data_start - 200)
    (tmp_path / "c.gdef").write_bytes(bytes(corrupt))
    assert main(["decompress", str(tmp_path / "c.gdef"), str(back)]) == 1
    assert "(tile 0)" in capsys.readouterr().err


def test_error_names_tile_of_whole_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Files decode in chunks of 128 tiles; a bad tile 130 is still reported as tile 130."""
    import struct

    from dsd.cli import main
    from dsd.codec import gdeflate

    stream = bytearray(gdeflate.compress(bytes(140 * 65536), level=1))
    n = struct.unpack_from("<H", stream, 2)[0]
    offset = struct.unpack_from("<I", stream, 8 + 4 * 130)[0]
    start = 8 + 4 * n + offset
    stream[start : start + 4] = b"\xff\xff\xff\xff"  # BFINAL=1, BTYPE=3: reserved
    src = tmp_path / "z.gdef"
    src.write_bytes(bytes(stream))
    assert main(["decompress", str(src), str(tmp_path / "z.out")]) == 1
    err = capsys.readouterr().err
    assert "(tile 130)" in err and "reserved block type" in err
