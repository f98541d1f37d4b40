"""Interoperability with the reference GDeflate encoder: every conformance stream decodes to the
manifest's sha256, every malformed stream is rejected with a CodecError (never a crash)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from dsd.codec import CodecError, CorruptDataError, gdeflate

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "conformance" / "gdeflate"
LOCAL = HERE / "data" / "gdeflate"


def manifest(folder: Path) -> list[dict[str, str]]:
    path = folder / "MANIFEST.tsv"
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def malformed(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("bad-*.gdef")) if folder.is_dir() else []


def _ids(rows: list[dict[str, str]]) -> list[str]:
    return [r["file"] for r in rows]


SHARED_ROWS = manifest(SHARED)
LOCAL_ROWS = manifest(LOCAL)
shared_needed = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared conformance corpus not present at {SHARED}")


def check_stream(folder: Path, row: dict[str, str], threads: int) -> None:
    data = (folder / row["file"]).read_bytes()
    assert len(data) == int(row["compressed_bytes"])
    info = gdeflate.stream_info(data)
    assert info.uncompressed_size == int(row["uncompressed_bytes"])
    out = gdeflate.decompress(data, threads=threads)
    assert hashlib.sha256(out).hexdigest() == row["sha256_of_uncompressed"]


@shared_needed
@pytest.mark.parametrize("row", SHARED_ROWS, ids=_ids(SHARED_ROWS))
def test_shared_stream_decodes_to_manifest_hash(row: dict[str, str]) -> None:
    """Every reference stream (levels 1/9/12, all data kinds) decodes bit-exactly."""
    check_stream(SHARED, row, threads=0)


@pytest.mark.parametrize("row", LOCAL_ROWS, ids=_ids(LOCAL_ROWS))
@pytest.mark.parametrize("threads", [1, 3])
def test_local_subset_decodes_to_manifest_hash(row: dict[str, str], threads: int) -> None:
    """The copied subset in tests/data decodes bit-exactly, single- and multi-threaded."""
    check_stream(LOCAL, row, threads=threads)


def test_local_subset_present() -> None:
    """The checkout carries its own interoperability vectors."""
    assert len(LOCAL_ROWS) >= 10
    assert len(malformed(LOCAL)) >= 10


@shared_needed
@pytest.mark.parametrize("name", malformed(SHARED))
def test_shared_malformed_rejected(name: str) -> None:
    """Each malformed stream (truncations, bad tables, bad sizes, reserved fields) is an error."""
    data = (SHARED / name).read_bytes()
    with pytest.raises(CodecError):
        gdeflate.decompress(data)
    with pytest.raises(CodecError):
        gdeflate.decompress_into(data, bytearray(1 << 20))


@pytest.mark.parametrize("name", malformed(LOCAL))
def test_local_malformed_rejected_as_corrupt(name: str) -> None:
    """Malformed streams raise CorruptDataError (the corrupt-data subclass), for 1 and N threads."""
    data = (LOCAL / name).read_bytes()
    for threads in (1, 0):
        with pytest.raises(CorruptDataError):
            gdeflate.decompress(data, threads=threads)


def test_malformed_errors_name_the_tile() -> None:
    """A tile-level failure reports its tile; a container failure reports none."""
    with pytest.raises(CorruptDataError) as info:
        gdeflate.decompress((LOCAL / "bad-lasttilesize.gdef").read_bytes())
    assert info.value.tile == 3 and "tile 3" in str(info.value)
    with pytest.raises(CorruptDataError) as info:
        gdeflate.decompress((LOCAL / "bad-tile-offset-oob.gdef").read_bytes())
    assert info.value.tile is None


@pytest.mark.parametrize("level", [1, 9, 12])
def test_encoder_reproduces_reference_for_one_byte(level: int) -> None:
    """For a 1-byte input our encoder emits the reference's exact 148 bytes (fixed block)."""
    ref = (LOCAL / f"one-byte.{level}.gdef").read_bytes()
    assert gdeflate.compress(b"A", level=level) == ref


@pytest.mark.parametrize("row", [r for r in LOCAL_ROWS if not r["file"].startswith("bad-")], ids=lambda r: r["file"])
def test_recompressed_subset_round_trips(row: dict[str, str]) -> None:
    """Our encoder's output of the same payload at the same level round-trips."""
    payload = gdeflate.decompress((LOCAL / row["file"]).read_bytes())
    level = int(row["level"])
    ours = gdeflate.compress(payload, level=level)
    assert gdeflate.decompress(ours) == payload
