"""Batches: many small requests from one client, and several clients at once."""

from __future__ import annotations

import random
import threading

from dsd.client import Client


def _check_batch(client: Client, path, data: bytes, count: int, seed: int) -> None:
    rng = random.Random(seed)
    f = client.open(path)
    region = client.alloc(count * 512)
    batch = client.batch()
    plan = []
    for i in range(count):
        n = rng.randrange(1, 513)
        off = rng.randrange(len(data) - n)
        plan.append((batch.read(f, off, n, region, i * 512, tag=i), off, n))
    order = [req.id for req in batch.as_completed(timeout=120)]
    assert len(order) == count and len(set(order)) == count
    view = region.view
    for req, off, n in plan:
        assert req.result() == n
        assert view[req.region_offset:req.region_offset + n] == data[off:off + n]
    client.free(region)
    client.close_file(f)


def test_ten_thousand_small_requests_in_one_batch(client, make_file):
    path, data = make_file(4 << 20)
    _check_batch(client, path, data, 10_000, seed=1)
    stats = client.statistics()
    assert stats["requests"] >= 10_000 and stats["completions"] >= 10_000


def test_four_concurrent_clients(daemon, make_file):
    path, data = make_file(2 << 20)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            with Client(daemon.ipc, name=f"worker-{seed}") as c:
                _check_batch(c, path, data, 2_500, seed)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)


def test_unsubmitted_batches_wait_for_submit(client, make_file):
    path, data = make_file(10_000)
    f = client.open(path)
    region = client.alloc(10_000)
    batch = client.batch()
    req = batch.read(f, 0, 10_000, region)
    assert not req.done()
    batch.submit()
    batch.wait_all(timeout=30)
    assert req.result() == 10_000 and bytes(req.data()) == data
