"""The read path end to end: a real daemon, real sockets, bytes compared with the file."""

from __future__ import annotations

import random

import pytest

from dsd.client import AsyncClient, Client, EndOfFile


@pytest.mark.parametrize("size", [0, 1, 4096, (1 << 20) + 1])
def test_whole_file_and_random_ranges_match(client, make_file, size):
    path, data = make_file(size)
    assert client.read(str(path)) == data
    rng = random.Random(size)
    f = client.open(path)
    assert f.size == size
    for _ in range(20):
        off = rng.randrange(size + 1)
        n = rng.randrange(size - off + 1)
        assert client.read(f, off, n) == data[off:off + n]
    client.close_file(f)


def test_64_mib_file_in_one_read(client, make_file):
    path, data = make_file(64 << 20)
    assert client.read(str(path)) == data
    assert client.read(str(path), 12345, 33 << 20) == data[12345:12345 + (33 << 20)]


def test_tcp_endpoint_with_token(daemon, make_file):
    path, data = make_file(100_000)
    with Client(daemon.tcp, token=daemon.token) as c:
        assert c.read(path, 10, 5000) == data[10:5010]
        assert c.welcome.features["io_backend"] in ("uring", "posix")


def test_read_into_region_and_plain_buffer(client, make_file):
    path, data = make_file(300_000)
    f = client.open(path)
    region = client.alloc(1 << 16)
    assert client.read_into(f, 1000, region) == 1 << 16
    assert bytes(region.view) == data[1000:1000 + (1 << 16)]
    buf = bytearray(777)
    assert client.read_into(f, 299_000, buf) == 777
    assert bytes(buf) == data[299_000:299_777]
    client.free(region)
    assert region.closed


def test_reads_past_eof_fail_clearly(client, make_file):
    path, data = make_file(1000)
    f = client.open(path)
    with pytest.raises(EndOfFile) as info:
        client.read(f, 900, 200)
    err = info.value
    assert err.hresult == 0x89240007 and err.hresult_name == "E_DSTORAGE_END_OF_FILE"
    assert "past the end of the file" in str(err) and str(path) in str(err) and "1000 bytes" in str(err)
    assert err.request["src_offset"] == 900 and err.request["src_size"] == 200
    with pytest.raises(EndOfFile):
        client.read(f, 1001, 0)
    assert client.read(f, 1000, 0) == b""


def test_async_client_reads_and_batches(daemon, make_file):
    import trio

    path, data = make_file(200_000)

    async def main():
        async with AsyncClient(daemon.ipc) as c:
            assert await c.read(str(path), 5, 1000) == data[5:1005]
            f = await c.open(path)
            region = await c.alloc(64 * 1024)
            batch = c.batch()
            reqs = [batch.read(f, i * 1024, 1024, region, i * 1024, tag=i) for i in range(64)]
            seen = [r async for r in batch.as_completed()]
            assert sorted(r.id for r in seen) == sorted(r.id for r in reqs)
            assert bytes(region.view) == data[:64 * 1024]
            buf = bytearray(10)
            await c.read_into(f, 3, buf)
            assert bytes(buf) == data[3:13]
            stats = await c.statistics()
            assert stats["requests"] >= 65
            await c.free(region)
            await c.close_file(f)

    trio.run(main)
