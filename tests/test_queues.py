"""DirectStorage queue semantics through the real daemon (shared/docs/directstorage-api.md §1.3–1.5).
Each test names the rule it checks."""

from __future__ import annotations

import time

import pytest

from dsd.client import (
    Client,
    EndOfFile,
    Fence,
    InvalidDestinationSize,
    InvalidMemoryQueuePriority,
    InvalidQueueCapacity,
    InvalidQueuePriority,
    InvalidRequest,
    InvalidSourceType,
    QueueClosed,
    StatusArray,
    WouldBlock,
)
from dsd.protocol import HRESULT, Op, Priority, SourceType, Status


@pytest.fixture
def slow_daemon(start_daemon):
    """A daemon whose scheduler keeps only a few records in the engine, so a backlog forms."""
    return start_daemon(env={"DSD_SCHED_WINDOW": "4", "DSD_IO_WORKERS": "1"})


def test_capacity_and_priority_are_validated(client):
    for bad in (127, 8193, 0):
        with pytest.raises(InvalidQueueCapacity, match="outside 128..8192"):
            client.create_queue(capacity=bad)
    with pytest.raises(InvalidQueuePriority):
        client.create_queue(priority=5)
    with pytest.raises(InvalidMemoryQueuePriority, match="REALTIME"):
        client.create_queue(source_type=SourceType.MEMORY, priority=Priority.NORMAL)
    q = client.create_queue(capacity=128, priority=Priority.HIGH, name="hi")
    info = q.query()
    assert (info.capacity, info.priority, info.name) == (128, Priority.HIGH, "hi")
    assert info.empty_slots == 127          # one slot is reserved, as in DirectStorage
    assert info.requests_until_auto_submit == 64


def test_nothing_runs_before_submit(client, make_file):
    path, data = make_file(8192)
    f, region = client.open(path), client.alloc(8192)
    q = client.create_queue(capacity=128)
    req = q.enqueue_read(f, 0, 8192, region)
    before = client.statistics()["requests"]
    time.sleep(0.2)
    client.ping()
    assert not req.done() and client.statistics()["requests"] == before
    assert q.query().requests_until_auto_submit == 63
    q.submit()
    q.wait(req, timeout=30)
    assert req.result() == 8192 and bytes(req.data()) == data


def test_auto_submit_at_half_capacity(client, make_file):
    path, _ = make_file(1 << 16)
    f, region = client.open(path), client.alloc(1 << 16)
    q = client.create_queue(capacity=128)
    reqs = [q.enqueue_read(f, i * 512, 512, region, i * 512) for i in range(63)]
    assert q.query().requests_until_auto_submit == 1
    before = client.statistics()["requests"]
    reqs.append(q.enqueue_read(f, 63 * 512, 512, region, 63 * 512))   # the 64th entry submits all
    assert client.statistics()["requests"] == before + 64
    q.wait_idle(timeout=30)
    assert all(r.result() == 512 for r in reqs)


def test_enqueue_blocks_on_a_full_queue_until_a_slot_frees(client, make_file):
    path, _ = make_file(1 << 16)
    f, region = client.open(path), client.alloc(1 << 16)
    q = client.create_queue(capacity=128)
    reqs = [q.enqueue_read(f, 0, 512, region) for _ in range(127)]     # 127 = capacity - 1 reserved slot
    with pytest.raises(WouldBlock, match="full"):
        q.enqueue_read_nowait(f, 0, 512, region)
    assert not any(r.done() for r in reqs)                              # nothing reaped yet
    last = q.enqueue_read(f, 0, 512, region)                            # blocks: pumps completions
    assert any(r.done() for r in reqs)
    q.wait_idle(timeout=30)
    assert last.result() == 512


def test_barriers_wait_for_every_earlier_entry_but_do_not_hold_back_later_ones(client, make_file):
    big, big_data = make_file(96 << 20)
    small, small_data = make_file(4096)
    fb, fs = client.open(big), client.open(small)
    region = client.alloc((96 << 20) + 8192)
    q = client.create_queue(capacity=256)
    fence = Fence()
    slow = q.enqueue_read(fb, 0, 96 << 20, region)                      # aligned: O_DIRECT from disk, slow
    fast = [q.enqueue_read(fs, 1, 100, region, (96 << 20) + 100 * i) for i in range(3)]
    event = q.enqueue_event()
    signal = q.enqueue_signal(fence, 7)
    later = q.enqueue_read(fs, 5, 100, region, (96 << 20) + 4096)
    order = [r.id for r in q.as_completed(timeout=60)]
    before = {slow.id, *(r.id for r in fast)}
    for barrier in (event, signal):
        assert all(order.index(b) < order.index(barrier.id) for b in before), order
    assert order.index(event.id) < order.index(signal.id)
    assert fence.completed_value == 7
    assert order.index(later.id) < order.index(event.id), "a barrier held back a later request"
    assert bytes(slow.data()[:4096]) == big_data[:4096] and bytes(later.data()) == small_data[5:105]


def test_status_entries_report_the_first_failure_since_the_previous_status(client, make_file):
    path, data = make_file(4096)
    f, region = client.open(path), client.alloc(8192)
    q = client.create_queue(capacity=128)
    status = StatusArray(3)
    ok1 = q.enqueue_read(f, 0, 100, region)
    bounds = q.enqueue_read(f, 0, 100, region, 8150)                    # destination overruns the region
    eof = q.enqueue_read(f, 4000, 200, region)                          # past the end of the file
    q.enqueue_status(status, 0)
    ok2 = q.enqueue_read(f, 100, 100, region, 200)
    q.enqueue_status(status, 1)
    assert not status.is_complete(0) and status.get_hresult(0) == HRESULT.E_PENDING
    q.wait_idle(timeout=30)
    assert status.get_hresult(0) == HRESULT.E_DSTORAGE_ACCESS_VIOLATION  # the first one, not EOF
    assert status.get_hresult(1) == HRESULT.S_OK
    assert status.get_hresult(2) == HRESULT.S_OK and status.is_complete(2)  # never enqueued
    assert ok1.result() == 100 and ok2.result() == 100
    with pytest.raises(EndOfFile):
        eof.result()
    record = q.retrieve_error_record()
    assert record.failure_count == 2
    assert isinstance(record.first_failure, InvalidRequest)
    assert record.first_failure.request["dst_offset"] == 8150 and record.first_failure.path == str(path)
    assert q.retrieve_error_record().failure_count == 0                  # counted since the last retrieval
    assert bounds.exception().hresult == HRESULT.E_DSTORAGE_ACCESS_VIOLATION


def test_size_mismatch_and_source_type_checks(client, make_file):
    path, _ = make_file(4096)
    f, region = client.open(path), client.alloc(4096)
    files = client.create_queue(capacity=128, source_type=SourceType.FILE)
    mem = client.create_queue(capacity=128, source_type=SourceType.MEMORY, priority=Priority.REALTIME)
    src = client.alloc(4096)
    wrong_type = files.enqueue_memory_read(src, 0, 100, region)
    wrong_type2 = mem.enqueue_read(f, 0, 100, region)
    from dsd.client import Request

    mismatch = Request(client._core.new_request_id(), files, op=Op.READ, src_id=f.id, src_offset=0, src_size=100,
                       dst_id=region.id, dst_offset=0, dst_size=200, file=f, region=region)
    files._enqueue(mismatch, block=True)
    files.wait_idle(timeout=30)
    mem.wait_idle(timeout=30)
    with pytest.raises(InvalidSourceType):
        wrong_type.result()
    with pytest.raises(InvalidSourceType):
        wrong_type2.result()
    with pytest.raises(InvalidDestinationSize):
        mismatch.result()


def test_cancel_by_tag_with_requests_queued_and_in_flight(slow_daemon, make_file):
    path, data = make_file(64 << 20)
    with Client(slow_daemon.ipc) as c:
        f, region = c.open(path), c.alloc(64 << 20)
        q = c.create_queue(capacity=1024)
        reqs = [q.enqueue_read(f, i << 20, 1 << 20, region, i << 20, tag=0x10 | (i % 2)) for i in range(64)]
        q.submit()
        n = q.cancel(mask=0xFF, value=0x11)                             # the odd ones
        q.wait_idle(timeout=60)
        odd = [r for i, r in enumerate(reqs) if i % 2]
        even = [r for i, r in enumerate(reqs) if not i % 2]
        assert all(r.status == Status.OK for r in even)
        cancelled = [r for r in odd if r.cancelled]
        assert n >= len(cancelled) > 0                                  # some were still waiting
        for i, r in enumerate(reqs):
            if r.status == Status.OK:
                assert bytes(r.data()[:64]) == data[i << 20:(i << 20) + 64]
        assert q.retrieve_error_record().failure_count == 0             # cancellations are not failures


def test_cancel_unsubmitted_and_single_requests(client, make_file):
    path, _ = make_file(4096)
    f, region = client.open(path), client.alloc(4096)
    q = client.create_queue(capacity=128)
    a = q.enqueue_read(f, 0, 10, region, tag=1)
    b = q.enqueue_read(f, 0, 10, region, tag=2)
    assert q.cancel_request(a) == 1 and a.cancelled
    assert q.cancel_all() == 1 and b.cancelled
    q.wait_idle(timeout=10)


def test_close_delivers_nothing_afterwards(slow_daemon, make_file):
    path, _ = make_file(32 << 20)
    with Client(slow_daemon.ipc) as c:
        f, region = c.open(path), c.alloc(32 << 20)
        q = c.create_queue(capacity=1024)
        reqs = [q.enqueue_read(f, i << 20, 1 << 20, region, i << 20) for i in range(32)]
        q.submit()
        q.close()
        done_at_close = {r.id for r in reqs if r.done()}
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            c._pump(0.1)
        assert {r.id for r in reqs if r.done()} == done_at_close
        with pytest.raises(QueueClosed):
            q.enqueue_read(f, 0, 1, region)
        assert c.ping() < 5 and slow_daemon.alive()


def test_priorities_serve_realtime_before_low_without_starving_low(slow_daemon, make_file):
    path, _ = make_file(64 << 20)
    with Client(slow_daemon.ipc, name="low") as low_client, Client(slow_daemon.ipc, name="rt") as rt_client:
        fl, rl = low_client.open(path), low_client.alloc(64 << 20)
        fr, rr = rt_client.open(path), rt_client.alloc(16 << 20)
        low = low_client.create_queue(capacity=2048, priority=Priority.LOW)
        rt = rt_client.create_queue(capacity=2048, priority=Priority.REALTIME)
        # LOW: 1000 reads of 1 MiB (unaligned by one byte: page cache, no O_DIRECT) — a long backlog
        low_reqs = [low.enqueue_read(fl, ((i % 63) << 20) + 1, 1 << 20, rl, (i % 63) << 20) for i in range(1000)]
        low.submit()                                                    # a backlog of LOW work first
        rt_reqs = [rt.enqueue_read(fr, (i % 256) << 16, 1 << 16, rr, (i % 256) << 16) for i in range(200)]
        rt.submit()
        rt.wait_idle(timeout=60)
        low_done_when_rt_finished = rt_client.statistics()["scheduler"]["served"]["LOW"]
        print("LOW served when REALTIME finished:", low_done_when_rt_finished)
        low.wait_idle(timeout=60)
        assert all(r.result() == 1 << 16 for r in rt_reqs) and all(r.result() == 1 << 20 for r in low_reqs)
        stats = rt_client.statistics()["scheduler"]["served"]
        assert stats["LOW"] >= 1000 and stats["REALTIME"] >= 200
    # RT finished while most of the earlier LOW backlog still waited, yet LOW kept moving.
    assert low_done_when_rt_finished < 800, low_done_when_rt_finished
    assert low_done_when_rt_finished > 0


def test_compression_support_is_honest(client):
    from dsd.protocol import Compression

    none = client.compression_support(Compression.NONE)
    assert none.flags == 0
    for fmt in (Compression.GDEFLATE, Compression.ZSTD):
        info = client.compression_support(fmt)
        assert info.flags in (0, 0x4) and info.detail
        assert not info.flags & 0x3                                     # no GPU claims: the daemon has none yet


def test_ordered_queue_delivers_completions_in_enqueue_order(client, make_file):
    big, _ = make_file(64 << 20)
    small, small_data = make_file(4096)
    fb, fs = client.open(big), client.open(small)
    region = client.alloc((64 << 20) + 8192)
    q = client.create_queue(capacity=256, ordered=True)
    status = StatusArray(1)
    slow = q.enqueue_read(fb, 0, 64 << 20, region)
    fast = [q.enqueue_read(fs, i, 10, region, (64 << 20) + 16 * i) for i in range(20)]
    bad = q.enqueue_read(fs, 4090, 10, region, 64 << 20)                # fails: past EOF
    q.enqueue_status(status, 0)
    order = [r.id for r in q.as_completed(timeout=60)]
    expected = [slow.id] + [r.id for r in fast] + [bad.id, order[-1]]
    assert order == expected
    assert bytes(fast[3].data()) == small_data[3:13]
    assert status.get_hresult(0) == HRESULT.E_DSTORAGE_END_OF_FILE


def test_trio_client_queues(daemon, make_file):
    """The same semantics through AsyncClient: awaitable enqueue, barriers, error records."""
    import trio

    from dsd.client import AsyncClient

    path, data = make_file(1 << 16)

    async def main():
        async with AsyncClient(daemon.ipc) as c:
            f, region = await c.open(path), await c.alloc(1 << 16)
            q = await c.create_queue(capacity=128, priority=Priority.HIGH)
            status, fence = StatusArray(1), Fence()
            reqs = [await q.enqueue_read(f, i * 512, 512, region, i * 512) for i in range(127)]
            with pytest.raises(WouldBlock):
                q.enqueue_read_nowait(f, 0, 1, region)
            bad = await q.enqueue_read(f, 1 << 16, 1, region)          # waits for a slot, then fails: EOF
            await q.enqueue_status(status, 0)
            await q.enqueue_signal(fence, 3)
            seen = [r async for r in q.as_completed()]
            assert len(seen) == 130 and fence.completed_value == 3
            assert status.get_hresult(0) == HRESULT.E_DSTORAGE_END_OF_FILE
            assert bytes(region.view[:127 * 512]) == data[:127 * 512] and all(r.result() == 512 for r in reqs)
            assert isinstance(bad.exception(), EndOfFile)
            record = await q.retrieve_error_record()
            assert record.failure_count == 1
            info = await q.query()
            assert info.empty_slots == 127 and info.in_flight == 0
            pending = await q.enqueue_read(f, 0, 8, region, tag=5)
            assert await q.cancel(0xFF, 5) == 1 and pending.cancelled
            assert (await c.compression_support(0)).flags == 0
            await q.aclose()

    trio.run(main)
