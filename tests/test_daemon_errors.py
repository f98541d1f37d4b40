"""Bad input gets a clear error and the daemon keeps serving everyone else."""

from __future__ import annotations

import errno
import os
import shutil

import msgpack
import pytest
import zmq

from dsd import protocol as p
from dsd.client import (
    AuthenticationError,
    Client,
    DaemonUnavailable,
    FileNotFound,
    InvalidRequest,
    IsADirectory,
    PermissionDenied,
    ProtocolMismatch,
    RemoteError,
)


def test_missing_file(client, tmp_path):
    with pytest.raises(FileNotFound) as info:
        client.open(tmp_path / "nope.bin")
    assert info.value.errno == errno.ENOENT and "nope.bin" in str(info.value)
    assert info.value.hresult == 0x80070002


def test_directory(client, tmp_path):
    with pytest.raises(IsADirectory) as info:
        client.open(tmp_path)
    assert info.value.errno == errno.EISDIR


def test_no_permission(start_daemon, make_file):
    """The daemon runs without the capabilities that let root ignore file modes (or as a normal user)."""
    path, _ = make_file(10)
    os.chmod(path, 0)
    wrapper = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv is missing: cannot make a permission error")
        wrapper = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    d = start_daemon(wrapper=wrapper)
    with Client(d.ipc) as c:
        with pytest.raises(PermissionDenied) as info:
            c.open(path)
        assert info.value.errno == errno.EACCES and "Permission denied" in str(info.value)


def test_request_errors_name_the_check(client, make_file):
    path, data = make_file(4096)
    f = client.open(path)
    region = client.alloc(4096)
    batch = client.batch()
    too_big = batch.read(f, 0, 4096, region, 1)            # destination overruns the region
    fine = batch.read(f, 0, 100, region, 0)
    batch.wait_all(timeout=30)
    with pytest.raises(InvalidRequest, match="lies outside its region"):
        too_big.result()
    assert too_big.exception().hresult == p.HRESULT.E_DSTORAGE_ACCESS_VIOLATION
    assert fine.result() == 100 and bytes(fine.data()) == data[:100]


def _raw_session(endpoint: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.connect(endpoint)
    return sock


def _hello(sock: zmq.Socket, version: int = p.PROTOCOL_VERSION, token: str | None = None) -> dict:
    sock.send_multipart(p.Hello(version=version, client="raw", pid=os.getpid(), token=token, seq=1).to_frames())
    return msgpack.unpackb(sock.recv_multipart()[0])


def _batch_with_bad_ids(sock):
    rec = p.pack_requests([p.RequestRecord(request_id=1, src_id=99, src_offset=0, src_size=1, dst_id=98,
                                           dst_offset=0, dst_size=1),
                           p.RequestRecord(request_id=2, src_id=99, src_offset=0, src_size=1, dst_id=98,
                                           dst_offset=0, dst_size=1, flags=1)])
    sock.send_multipart(p.Batch(seq=2, count=2, bodies=[rec]).to_frames())
    frames = sock.recv_multipart()
    return msgpack.unpackb(frames[0]), list(p.iter_completions(frames[1]))


@pytest.mark.parametrize("frames, expect", [
    ([b"\xc1\xff"], "not valid msgpack"),
    ([msgpack.packb({"type": "BATCH", "seq": 7, "count": 3})], "body frames"),          # truncated multipart
    ([msgpack.packb({"type": "BATCH", "seq": 7, "count": 3}), b"\0" * 64], "count 3 needs 192"),
    ([msgpack.packb({"type": "OPEN_FILE", "seq": 7})], "lacks required field"),
    ([msgpack.packb({"type": "WHAT", "seq": 7})], "unknown message type"),
])
def test_malformed_messages_get_bad_message_and_the_daemon_goes_on(daemon, client, make_file, frames, expect):
    sock = _raw_session(daemon.ipc)
    assert _hello(sock)["type"] == "WELCOME"
    sock.send_multipart(frames)
    reply = msgpack.unpackb(sock.recv_multipart()[0])
    assert reply["type"] == "ERROR" and reply["code"] == "BAD_MESSAGE" and expect in reply["message"]
    assert reply["errno"] == errno.EPROTO
    header, done = _batch_with_bad_ids(sock)  # the same connection still works
    assert header["type"] == "COMPLETIONS" and {d.reason for d in done} == {p.Reason.BAD_FILE, p.Reason.RESERVED}
    messages = {e["id"]: e["message"] for e in header["errors"]}
    assert "file id 99 is not open" in messages[1] and "reserved" in messages[2]
    sock.close()
    path, data = make_file(5000)
    assert client.read(path) == data  # and so does everyone else
    assert daemon.alive()


def test_message_before_hello_is_refused(daemon):
    sock = _raw_session(daemon.ipc)
    sock.send_multipart(p.Ping(seq=3).to_frames())
    reply = msgpack.unpackb(sock.recv_multipart()[0])
    assert reply["code"] == "BAD_MESSAGE" and "before HELLO" in reply["message"] and reply["seq"] == 3
    sock.close()


def test_wrong_protocol_version(daemon):
    sock = _raw_session(daemon.ipc)
    reply = _hello(sock, version=99)
    assert reply["code"] == "VERSION_MISMATCH" and "99" in reply["message"]
    sock.close()


def test_tcp_needs_the_right_token(daemon):
    with pytest.raises(AuthenticationError, match="wrong token"):
        Client(daemon.tcp, token="0" * 64)
    sock = _raw_session(daemon.tcp)
    reply = _hello(sock, token=None)
    assert reply["code"] == "AUTH_FAILED" and "no token" in reply["message"]
    sock.close()
    with Client(daemon.tcp, token=daemon.token) as c:
        assert c.ping() < 5


def test_unknown_region_and_file_ids_in_control_messages(client):
    with pytest.raises(RemoteError, match="region 12345 is not registered"):
        client._call(lambda seq: p.UnregisterMemory(seq=seq, region_id=12345), p.Ok, what="x")
    with pytest.raises(RemoteError, match="file id 777 is not open") as info:
        client._call(lambda seq: p.CloseFile(seq=seq, file_id=777), p.Ok, what="x")
    assert info.value.hresult == p.HRESULT.E_DSTORAGE_FILE_NOT_OPEN


@pytest.mark.parametrize("name, size, why", [
    ("../etc/passwd", 10, "not a shared-memory name"),
    ("does-not-exist-dsd", 10, "No such file"),
    ("x", 0, "must be > 0"),
])
def test_bad_memory_registrations(client, name, size, why):
    with pytest.raises(RemoteError, match=why):
        client._call(lambda seq: p.RegisterMemory(seq=seq, name=name, size=size), p.MemoryRegistered, what="x")


def test_region_larger_than_its_file_is_refused(client):
    name = f"dsd-test-small-{os.getpid()}"
    fd = os.open(f"/dev/shm/{name}", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, 100)
        with pytest.raises(RemoteError, match="fewer than the 4096 registered"):
            client._call(lambda seq: p.RegisterMemory(seq=seq, name=name, size=4096), p.MemoryRegistered, what="x")
    finally:
        os.close(fd)
        os.unlink(f"/dev/shm/{name}")


def test_no_daemon_is_a_clear_error(tmp_path):
    with pytest.raises(DaemonUnavailable, match="dsd serve"):
        Client(f"ipc://{tmp_path}/none.sock")


def test_client_rejects_garbage_from_a_fake_daemon(tmp_path):
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    endpoint = f"ipc://{tmp_path}/fake.sock"
    router.bind(endpoint)
    import threading

    def fake():
        ident, _hello_frame = router.recv_multipart()
        router.send_multipart([ident, b"\x93garbage"])

    t = threading.Thread(target=fake)
    t.start()
    with pytest.raises(ProtocolMismatch, match="invalid message"):
        Client(endpoint, timeout=5)
    t.join()
    router.close()


def test_unknown_region_in_a_request(client, make_file):
    path, _ = make_file(100)
    f = client.open(path)
    region = client.alloc(4096)
    batch = client.batch()
    real_id, region.id = region.id, 4242                     # a region the daemon never saw
    req = batch.read(f, 0, 10, region)
    region.id = real_id
    batch.wait_all(timeout=30)
    with pytest.raises(InvalidRequest, match="memory region 4242 is not registered"):
        req.result()


def test_failed_completion_carries_the_request_that_failed(client, make_file):
    """The error record names the request (all its fields) and the file, as DirectStorage's does."""
    path, _ = make_file(2048)
    f = client.open(path)
    region = client.alloc(8192)
    batch = client.batch()
    bad = batch.read(f, 1024, 4096, region, 512, tag=0xABC, name="texture-17")
    batch.wait_all(timeout=30)
    err = bad.exception()
    assert err.path == str(path)
    assert err.request == {"id": bad.id, "op": 0, "compression": 0, "source_type": 0, "src_id": f.id,
                           "src_offset": 1024, "src_size": 4096, "dst_id": region.id, "dst_offset": 512,
                           "dst_size": 4096, "uncompressed_size": 0, "cancel_tag": 0xABC}
