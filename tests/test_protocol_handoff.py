"""dsd.protocol's GPU handoff part: DECODE_TO_GPU / GPU_BUFFER / RELEASE_GPU_BUFFER and the handoff
socket's fixed frames, byte for byte as docs/protocol.md §5 writes them, and the decoder's
invariant (parses, or raises RemoteProtocolError) on their fields."""

from __future__ import annotations

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


def gpu_buffer(**kw) -> p.GpuBuffer:
    fields = dict(seq=3, buffer_id=7, ticket=bytes(range(32)), socket="/run/dsd/handoff.sock", size=300,
                  allocation_size=512, memory_type_index=1, handle_type=1, device_uuid=b"d" * 16,
                  driver_uuid=b"r" * 16, results=[[0, 100, 0], [256, 44, 0], [0, 0, 0x89240010]],
                  errors=[{"index": 2, "errno": 0, "hresult": 0x89240010, "reason": 9, "message": "corrupt"}])
    fields.update(kw)
    return p.GpuBuffer(**fields)


def test_the_messages_round_trip():
    client, server = handshake()
    for msg in [p.DecodeToGpu(seq=1, requests=[[1, 0, 10, 1, 100], [2, 4096, 64, 0, 64]]),
                p.ReleaseGpuBuffer(seq=2, buffer_id=7)]:
        got = server.receive(client.send(msg))
        assert type(got) is type(msg) and got.header() == msg.header()
    reply = gpu_buffer()
    got = client.receive(server.send(reply))
    assert got == reply


def test_decode_to_gpu_is_byte_exact():
    """The example of docs/protocol.md §5.1."""
    frames = p.DecodeToGpu(seq=9, requests=[[1, 4096, 35312, 1, 196625]]).to_frames()
    assert frames[0].hex(" ") == (
        "83 a4 74 79 70 65 ad 44 45 43 4f 44 45 5f 54 4f 5f 47 50 55 a3 73 65 71 09 a8 72 65 71 75 65 73 74 73 91 95 "
        "01 cd 10 00 cd 89 f0 01 ce 00 03 00 11")


@pytest.mark.parametrize("requests, why", [
    ([], "1..4096"),
    ([[1, 0, 10, 1]], "list of 5"),
    ([[1, 0, 10, 1, -1]], "negative"),
    ([[1, 0, 10, True, 10]], "list of 5"),
    ([{"file_id": 1}], "list of 5"),
    ([[1, 0, 1, 0, 1]] * 4097, "1..4096"),
])
def test_bad_request_lists_are_remote_protocol_errors(requests, why):
    _, server = handshake()
    header = msgpack.packb({"type": "DECODE_TO_GPU", "seq": 1, "requests": requests})
    with pytest.raises(p.RemoteProtocolError, match=why):
        server.receive([header])
    with pytest.raises(p.LocalProtocolError):
        p.DecodeToGpu(seq=1, requests=requests).to_frames()


def test_bad_gpu_buffer_fields():
    with pytest.raises(p.LocalProtocolError, match="ticket"):
        gpu_buffer(ticket=b"short").to_frames()
    with pytest.raises(p.LocalProtocolError, match="uuid"):
        gpu_buffer(device_uuid=b"").to_frames()
    with pytest.raises(p.LocalProtocolError, match="result 0"):
        gpu_buffer(results=[[0, 1]]).to_frames()
    gpu_buffer(buffer_id=0, ticket=b"").to_frames()          # no buffer: no ticket either


def test_ticket_frames_are_byte_exact():
    ticket = bytes(range(32))
    raw = p.TicketRequest(ticket).pack()
    assert raw == b"DSDH\x01\x00\x00\x00" + ticket and len(raw) == p.TICKET_REQUEST.size == 40
    assert p.TicketRequest.unpack(raw).ticket == ticket
    reply = p.TicketReply(2, 7, "gone").pack()
    assert reply == b"DSDH\x01\x00\x00\x00" + (2).to_bytes(4, "little") + (7).to_bytes(4, "little") \
        + (4).to_bytes(4, "little") + b"gone"
    assert p.TicketReply.unpack_head(reply[:20]) == (2, 7, 4)
    with pytest.raises(p.LocalProtocolError):
        p.TicketRequest(b"x").pack()


@pytest.mark.parametrize("raw, why", [
    (b"XSDH\x01\x00\x00\x00" + bytes(32), "magic"),
    (b"DSDH\x02\x00\x00\x00" + bytes(32), "version"),
    (b"DSDH\x01\x00\x01\x00" + bytes(32), "reserved"),
    (b"DSDH\x01\x00\x00\x00", "40 bytes"),
])
def test_bad_ticket_requests(raw, why):
    with pytest.raises(p.RemoteProtocolError, match=why):
        p.TicketRequest.unpack(raw)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["DECODE_TO_GPU", "GPU_BUFFER", "RELEASE_GPU_BUFFER"]),
       st.dictionaries(st.sampled_from(["seq", "requests", "buffer_id", "ticket", "socket", "size", "results",
                                        "errors", "device_uuid", "driver_uuid", "allocation_size"]),
                       st.none() | st.integers(-5, 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=5)
                       | st.lists(st.lists(st.integers(-1, 2**64 - 1), max_size=6) | st.integers(-(2**63), 2**64 - 1),
                                max_size=3),
                       max_size=8))
def test_fuzz_fields_parse_or_raise_remote_protocol_error(kind, fields):
    client, server = handshake()
    header = msgpack.packb({"type": kind, **fields}, use_bin_type=True)
    side = server if kind != "GPU_BUFFER" else client
    try:
        side.receive([header])
    except p.RemoteProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=20))
def test_fuzz_ticket_reply_heads(raw):
    try:
        p.TicketReply.unpack_head(raw)
    except p.RemoteProtocolError:
        pass
