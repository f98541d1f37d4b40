"""Client lifetimes: a client killed mid-batch is released without harming others."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from dsd.client import Client

KILLED_CLIENT = textwrap.dedent("""
    import sys
    from dsd.client import Client
    endpoint, path = sys.argv[1], sys.argv[2]
    c = Client(endpoint, name="doomed")
    files = [c.open(path) for _ in range(5)]
    region = c.alloc(64 << 20)
    batch = c.batch()
    for i in range(20000):
        batch.read(files[i % 5], (i * 4096) % (60 << 20), 4096, region, (i * 4096) % (60 << 20))
    batch.submit()
    print("submitted", flush=True)
    import time; time.sleep(60)
""")


def _wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_sigkilled_client_releases_its_resources(daemon, make_file, client):
    path, data = make_file(64 << 20)
    # Warm up, so the daemon's own fds exist before the baseline: the engine, the sockets, and
    # pyzmq's collector for zero-copy sends (its own context: two threads, seven fds), which
    # starts at the first frame of 64 KiB or more - here a COMPLETIONS for a batch of 20,000.
    f = client.open(path)
    region = client.alloc(1 << 20)
    batch = client.batch()
    for i in range(20000):
        batch.read(f, (i * 4096) % (60 << 20), 16, region, (i * 16) % (1 << 20))
    batch.submit()
    batch.wait_all(timeout=30)
    client.free(region)
    client.close_file(f)
    base_fds, base_maps = daemon.open_fds(), daemon.shm_mappings()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, daemon.ipc, str(path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"submitted"
    assert _wait_until(lambda: daemon.shm_mappings() > base_maps)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert _wait_until(lambda: daemon.open_fds() <= base_fds and daemon.shm_mappings() <= base_maps), (
        f"fds {daemon.open_fds()} (baseline {base_fds}), shm maps {daemon.shm_mappings()} (baseline {base_maps})\n"
        + daemon.output()[-3000:])
    assert daemon.alive()
    assert client.read(path, 1234, 5678) == data[1234:1234 + 5678]
    assert "doomed" in daemon.output() and "disconnected" in daemon.output()


def test_bye_releases_files_and_regions(daemon, make_file):
    path, _ = make_file(1000)
    with Client(daemon.ipc) as warm:
        warm.read(path)
    base_fds, base_maps = daemon.open_fds(), daemon.shm_mappings()
    with Client(daemon.ipc) as c:
        for _ in range(10):
            c.open(path)
        c.alloc(1 << 20)
        assert daemon.open_fds() > base_fds and daemon.shm_mappings() > base_maps
    assert _wait_until(lambda: daemon.open_fds() <= base_fds and daemon.shm_mappings() <= base_maps)


def test_many_clients_connect_and_leave(daemon, make_file):
    path, data = make_file(4096)
    for i in range(30):
        with Client(daemon.ipc, name=f"c{i}") as c:
            assert c.read(path, i, 100) == data[i:i + 100]
    with Client(daemon.ipc) as c:
        stats = c.statistics()
    assert stats["clients"] == 1 and stats["clients_total"] >= 31
