"""dsd.protocol: encoding, the state machine, and the decoder's one invariant —
any input decodes to a message or raises RemoteProtocolError (never anything else)."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsd import protocol as p


def handshake() -> tuple[p.Connection, p.Connection]:
    client, server = p.Connection(p.Role.CLIENT), p.Connection(p.Role.SERVER)
    server.receive(client.send(p.Hello(version=p.PROTOCOL_VERSION, client="t", pid=1)))
    client.receive(server.send(p.Welcome(seq=0, version=p.PROTOCOL_VERSION, server="dsd", session=1)))
    return client, server


def test_handshake_moves_both_sides_to_ready():
    client, server = handshake()
    assert client.state is p.State.READY and server.state is p.State.READY


def test_every_message_round_trips():
    client, server = handshake()
    rec = p.pack_requests([p.RequestRecord(request_id=7, src_id=1, src_offset=2, src_size=3, dst_id=4, dst_offset=5,
                                           dst_size=3)])
    for msg in [p.OpenFile(seq=1, path="/x"), p.CloseFile(seq=2, file_id=3), p.RegisterMemory(seq=3, name="n", size=9),
                p.UnregisterMemory(seq=4, region_id=1), p.Batch(seq=5, count=1, bodies=[rec]),
                p.Batch(seq=5, count=1, bodies=[rec, b"name"]), p.Submit(seq=6), p.Cancel(seq=7, mask=1, value=1),
                p.StatsRequest(seq=8), p.Ping(seq=9)]:
        got = server.receive(client.send(msg))
        assert type(got) is type(msg)
        assert got.header() == msg.header()
    comp = p.pack_completions([p.CompletionRecord(7, 3, 0, 0, p.Status.OK, p.Reason.NONE)])
    for msg in [p.FileOpened(seq=1, file_id=1, size=5), p.MemoryRegistered(seq=1, region_id=2), p.Ok(seq=1),
                p.StatsReply(seq=1, stats={"a": 1}), p.Pong(seq=1), p.Probe(),
                p.Completions(count=1, errors=[{"id": 7, "message": "x"}], bodies=[comp]),
                p.Error(seq=None, code="X", message="m")]:
        got = client.receive(server.send(msg))
        assert got.header() == msg.header()


def test_record_layout_is_byte_exact():
    """The 64-byte request record's field offsets match docs/protocol.md and native/dsd_wire.h."""
    rec = p.RequestRecord(request_id=0x0102030405060708, cancel_tag=0x1112131415161718, src_offset=0x21, src_size=0x31,
                          src_id=0x41, dst_offset=0x51, dst_size=0x61, dst_id=0x71, uncompressed_size=0x81,
                          op=p.Op.WRITE, compression=p.Compression.ZSTD, source_type=p.SourceType.MEMORY,
                          name_offset=0x91, name_length=0xA1, level=-3)
    raw = bytes(p.pack_requests([rec]))
    assert len(raw) == 64
    assert raw[0:8] == struct.pack("<Q", 0x0102030405060708)
    assert raw[8:16] == struct.pack("<Q", 0x1112131415161718)
    assert struct.unpack_from("<QIIQIII", raw, 16) == (0x21, 0x31, 0x41, 0x51, 0x61, 0x71, 0x81)
    assert raw[52:56] == bytes([1, 2, 1, 0])
    assert struct.unpack_from("<IHbB", raw, 56) == (0x91, 0xA1, -3, 0)
    assert next(p.iter_requests(raw)) == rec
    comp = bytes(p.pack_completions([p.CompletionRecord(5, 6, 0x89240007, 2, p.Status.FAILED, p.Reason.EOF)]))
    assert comp == struct.pack("<QQIiBB6x", 5, 6, 0x89240007, 2, 1, 2)


@pytest.mark.parametrize("send_as, msg", [
    (p.Role.CLIENT, p.OpenFile(seq=1, path="/x")),          # before HELLO
    (p.Role.CLIENT, p.Welcome(seq=1, version=1, server="s", session=1)),  # a daemon message
    (p.Role.SERVER, p.FileOpened(seq=1, file_id=1, size=1)),  # before the handshake
    (p.Role.SERVER, p.Hello(version=1, client="c", pid=1)),
])
def test_misuse_is_a_local_protocol_error(send_as, msg):
    with pytest.raises(p.LocalProtocolError):
        p.Connection(send_as).send(msg)


def test_hello_twice_and_messages_after_bye():
    client, server = handshake()
    with pytest.raises(p.LocalProtocolError):
        client.send(p.Hello(version=1, client="c", pid=1))
    server.receive(client.send(p.Bye(seq=3)))
    with pytest.raises(p.LocalProtocolError):
        client.send(p.Ping(seq=4))
    with pytest.raises(p.RemoteProtocolError):
        server.receive(p.Ping(seq=4).to_frames())


def test_invalid_field_values_are_refused_locally():
    client, _ = handshake()
    with pytest.raises(p.LocalProtocolError):
        client.send(p.OpenFile(seq=1, path=5))  # type: ignore[arg-type]
    with pytest.raises(p.LocalProtocolError):
        client.send(p.Batch(seq=1, count=2, bodies=[b"\0" * 64]))


BAD_FRAMES = [
    ([], "empty message"),
    ([b"\xc1"], "not valid msgpack"),
    ([msgpack.packb([1, 2])], "must be a msgpack map"),
    ([msgpack.packb({"type": "NOPE"})], "unknown message type"),
    ([msgpack.packb({"type": "OPEN_FILE", "seq": 1})], "lacks required field"),
    ([msgpack.packb({"type": "OPEN_FILE", "seq": 1, "path": 3})], "invalid value"),
    ([msgpack.packb({"type": "OPEN_FILE", "seq": 1, "path": "/x", "zzz": 1})], "unknown fields"),
    ([msgpack.packb({"type": "CLOSE_FILE", "seq": 1, "file_id": -1})], "must not be negative"),
    ([msgpack.packb({"type": "CLOSE_FILE", "seq": 1, "file_id": True})], "invalid value"),
    ([msgpack.packb({"type": "BATCH", "seq": 1, "count": 1})], "body frames"),
    ([msgpack.packb({"type": "BATCH", "seq": 1, "count": 2}), b"\0" * 64], "count 2 needs 128"),
    ([msgpack.packb({"type": "BATCH", "seq": 1, "count": 1, "layout": 9}), b"\0" * 64], "layout 9"),
    ([msgpack.packb({"type": "PING", "seq": 1}), b"extra"], "body frames"),
]


@pytest.mark.parametrize("frames, why", BAD_FRAMES, ids=[w for _, w in BAD_FRAMES])
def test_garbage_is_a_remote_protocol_error_with_a_reason(frames, why):
    _, server = handshake()
    with pytest.raises(p.RemoteProtocolError, match=why):
        server.receive(frames)


def test_daemon_messages_from_a_client_are_refused():
    _, server = handshake()
    with pytest.raises(p.RemoteProtocolError, match="cannot come from the client"):
        server.receive(p.Ok(seq=1).to_frames())


def test_client_refuses_a_daemon_of_another_version():
    client = p.Connection(p.Role.CLIENT)
    client.send(p.Hello(version=p.PROTOCOL_VERSION, client="c", pid=1))
    with pytest.raises(p.RemoteProtocolError, match="speaks protocol 99"):
        client.receive(p.Welcome(seq=0, version=99, server="s", session=1).to_frames())


def test_hresult_names():
    assert p.hresult_name(0x89240007) == "E_DSTORAGE_END_OF_FILE"
    assert p.hresult_name(0x80070002) == "HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)"
    assert p.hresult_name(0x12345678) == "0x12345678"


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=4))
def test_fuzz_raw_frames_parse_or_raise_remote_protocol_error(frames):
    _, server = handshake()
    try:
        server.receive(frames)
    except p.RemoteProtocolError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(p.MESSAGE_TYPES)), st.dictionaries(st.sampled_from(
    ["seq", "path", "count", "file_id", "size", "name", "layout", "submit", "ids", "mask", "errors", "version",
     "client", "pid", "token", "x"]), msgpack_values, max_size=6), st.lists(st.binary(max_size=130), max_size=3))
def test_fuzz_structured_headers_parse_or_raise_remote_protocol_error(kind, fields, bodies):
    _, server = handshake()
    header = msgpack.packb({"type": kind, **fields}, use_bin_type=True)
    try:
        server.receive([header, *bodies])
    except p.RemoteProtocolError:
        pass
