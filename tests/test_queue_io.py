"""Issue 7's request kinds through the real daemon: memory sources, compressed reads (GDeflate,
Zstandard), the staging limit, writes (plain and compressed) and fsync, and write failures."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest
import zstandard

from dsd.client import Client, DecompressionError, InvalidDestinationSize, RemoteError, RequestTooLarge
from dsd.codec import gdeflate
from dsd.protocol import Compression, Priority, SourceType


def _text(n: int) -> bytes:
    words = b"the quick brown fox jumps over the lazy dog and reads assets from disk "
    return (words * (n // len(words) + 1))[:n]


def test_memory_source_copy_and_decode(client):
    data = _text(300_000)
    packed = gdeflate.compress(data, level=9)
    src, dst = client.alloc(1 << 20), client.alloc(1 << 20)
    src.view[:len(data)] = data
    src.view[512 * 1024:512 * 1024 + len(packed)] = packed
    q = client.create_queue(capacity=128, source_type=SourceType.MEMORY, priority=Priority.REALTIME)
    plain = q.enqueue_memory_read(src, 0, len(data), dst, 0)
    decoded = q.enqueue_memory_read(src, 512 * 1024, len(data), dst, 400_000, compression=Compression.GDEFLATE,
                                    compressed_size=len(packed))
    q.wait_idle(timeout=30)
    assert plain.result() == len(data) and bytes(plain.data()) == data
    assert decoded.result() == len(data) and bytes(decoded.data()) == data


@pytest.mark.parametrize("fmt", [Compression.GDEFLATE, Compression.ZSTD])
def test_compressed_file_reads_decode_into_the_destination(client, tmp_path, fmt):
    chunks = [_text(70_000), os.urandom(50_000), bytes(200_000), _text(1)]
    blobs = [gdeflate.compress(c) if fmt == Compression.GDEFLATE else zstandard.compress(c) for c in chunks]
    path = tmp_path / "assets.pak"
    path.write_bytes(b"".join(blobs))
    f = client.open(path)
    region = client.alloc(sum(len(c) for c in chunks))
    q = client.create_queue(capacity=128)
    reqs, off, dst = [], 0, 0
    for chunk, blob in zip(chunks, blobs):
        reqs.append(q.enqueue_read(f, off, len(chunk), region, dst, compression=fmt, compressed_size=len(blob)))
        off += len(blob)
        dst += len(chunk)
    q.wait_idle(timeout=60)
    for req, chunk in zip(reqs, chunks):
        assert req.result() == len(chunk) and bytes(req.data()) == chunk


def test_corrupt_stream_fails_alone_with_the_tile_named(client, tmp_path):
    good = gdeflate.compress(_text(200_000))
    bad = bytearray(good)
    bad[len(bad) // 2:len(bad) // 2 + 64] = os.urandom(64)
    path = tmp_path / "mixed.pak"
    path.write_bytes(good + bytes(bad))
    f, region = client.open(path), client.alloc(400_000)
    q = client.create_queue(capacity=128)
    ok = q.enqueue_read(f, 0, 200_000, region, 0, compression=Compression.GDEFLATE, compressed_size=len(good))
    broken = q.enqueue_read(f, len(good), 200_000, region, 200_000, compression=Compression.GDEFLATE,
                            compressed_size=len(bad))
    q.wait_idle(timeout=30)
    assert ok.result() == 200_000
    with pytest.raises(DecompressionError, match="tile") as info:
        broken.result()
    assert info.value.hresult == 0x89240030 and str(path) in str(info.value)


def test_uncompressed_size_must_match_the_destination(client, tmp_path):
    blob = gdeflate.compress(_text(10_000))
    path = tmp_path / "a.gdef"
    path.write_bytes(blob)
    f, region = client.open(path), client.alloc(20_000)
    q = client.create_queue(capacity=128)
    wrong = q.enqueue_read(f, 0, 12_000, region, compression=Compression.GDEFLATE, compressed_size=len(blob))
    q.wait_idle(timeout=30)
    with pytest.raises((InvalidDestinationSize, DecompressionError)):
        wrong.result()


def test_requests_larger_than_the_staging_buffer_fail(start_daemon, tmp_path):
    d = start_daemon(env={"DSD_STAGING_BYTES": str(1 << 20)})
    data = _text(3 << 20)
    blob = gdeflate.compress(data)
    path = tmp_path / "big.gdef"
    path.write_bytes(blob)
    with Client(d.ipc) as c:
        assert c.welcome.features["staging_bytes"] == 1 << 20
        f, region = c.open(path), c.alloc(len(data))
        q = c.create_queue(capacity=128)
        big = q.enqueue_read(f, 0, len(data), region, compression=Compression.GDEFLATE, compressed_size=len(blob))
        q.wait_idle(timeout=30)
        with pytest.raises(RequestTooLarge, match="staging"):
            big.result()


@pytest.mark.parametrize("fmt, level", [(Compression.NONE, 0), (Compression.GDEFLATE, 9), (Compression.ZSTD, 3)])
def test_writes_read_back_byte_for_byte(client, tmp_path, fmt, level):
    data = _text(250_000) + os.urandom(10_000)
    region = client.alloc(len(data))
    region.view[:] = data
    out = tmp_path / f"out-{int(fmt)}.bin"
    f = client.open(out, write=True, create=True)
    q = client.create_queue(capacity=128)
    w = q.enqueue_write(region, 0, len(data), f, 4096, compression=fmt, level=level)
    sync = q.enqueue_fsync(f)
    order = [r.id for r in q.as_completed(timeout=60)]
    assert order.index(w.id) < order.index(sync.id) and sync.result() == 0
    written = out.read_bytes()[4096:]
    assert w.result() == len(written)
    if fmt == Compression.NONE:
        assert written == data
    elif fmt == Compression.GDEFLATE:
        assert gdeflate.decompress(written) == data
    else:
        assert zstandard.ZstdDecompressor().decompress(written) == data
    # and the daemon reads it back, decoding on the way
    back = client.alloc(len(data))
    r = q.enqueue_read(f, 4096, len(data), back, compression=fmt,
                       compressed_size=len(written) if fmt else None)
    q.wait_idle(timeout=30)
    assert r.result() == len(data) and bytes(back.view) == data


def test_write_to_a_file_opened_read_only_fails_cleanly(client, tmp_path):
    path = tmp_path / "ro.bin"
    path.write_bytes(b"x" * 100)
    f = client.open(path)
    region = client.alloc(4096)
    q = client.create_queue(capacity=128)
    w = q.enqueue_write(region, 0, 100, f, 0)
    q.wait_idle(timeout=30)
    with pytest.raises(RemoteError, match="not opened for writing") as info:
        w.result()
    assert info.value.errno == errno.EBADF and path.read_bytes() == b"x" * 100


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {res.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_write_to_a_full_filesystem_fails_with_enospc(client, tiny_fs):
    data = os.urandom(1 << 20)
    region = client.alloc(len(data))
    region.view[:] = data
    f = client.open(tiny_fs / "full.bin", write=True, create=True)
    q = client.create_queue(capacity=128)
    w = q.enqueue_write(region, 0, len(data), f, 0)
    ok = q.enqueue_write(region, 0, 1000, f, 0)
    q.wait_idle(timeout=30)
    with pytest.raises(RemoteError) as info:
        w.result()
    assert info.value.errno == errno.ENOSPC and "write at offset 0" in str(info.value)
    assert info.value.hresult == 0x80070070
    assert ok.result() == 1000
