"""Hand-built tiles for each trap of the GDeflate format (see docs/codec.md). Each stream is made
bit by bit with tests/gdeflate_bits.py, which follows the format notes' encoder rules, so these
tests pin the decoder to the format rather than to our own encoder."""

from __future__ import annotations

import pytest

from dsd.codec import CorruptDataError, gdeflate
from gdeflate_bits import TileBuilder, container, expand


def decode_tile(tile: bytes, size: int) -> bytes:
    return gdeflate.decompress(container([tile], [size]))


def test_reference_vector_one_byte() -> None:
    """Word order: lane 0 gets word 32 (refill after the header), lane 1 word 33 (sweep)."""
    b = TileBuilder()
    b.huffman_block([0x41], True, dynamic=False)
    tile = b.finish()
    assert len(tile) == 136 and tile[:4] == bytes.fromhex("73040000") and not any(tile[4:])
    assert decode_tile(tile, 1) == b"A"


def test_reference_vector_abc_distance_in_sweep() -> None:
    """A length on lane 4 whose distance is only decoded in the end-of-block sweep."""
    b = TileBuilder()
    b.huffman_block([97, 98, 99, 97, (38, 3)], True, dynamic=False)
    tile = b.finish()
    words = [tile[i : i + 4].hex() for i in range(0, 20, 4)]
    assert words == ["4b040000", "49000000", "c9000000", "89000000", "c4210000"]
    assert decode_tile(tile, 42) == b"abc" * 14


def test_stored_block_len_zero_then_more_blocks() -> None:
    """A stored block with LEN 0 (lane 0's refill happens in the sweep), then blocks carry on
    with each lane's bit position kept (no realignment)."""
    b = TileBuilder()
    b.stored_block(b"", False)
    b.stored_block(b"", False)
    b.huffman_block([1, 2, 3, (10, 3)], False, dynamic=False)
    b.stored_block(bytes(range(70)), True)
    data = expand([1, 2, 3, (10, 3)]) + bytes(range(70))
    assert decode_tile(b.finish(), len(data)) == data


def test_stored_bytes_round_robin_from_lane_zero() -> None:
    """Stored block: no NLEN, no byte alignment, byte k on lane k mod 32 starting at lane 0."""
    b = TileBuilder()
    b.huffman_block([7], False, dynamic=False)  # leaves lane 0 at an odd bit position
    payload = bytes((i * 37) & 0xFF for i in range(1000))
    b.stored_block(payload, True)
    assert decode_tile(b.finish(), 1001) == b"\x07" + payload


def test_full_tile_of_stored_blocks() -> None:
    """An incompressible 64 KiB tile needs two stored blocks (65535 + 1)."""
    payload = bytes((i * 131 + (i >> 8)) & 0xFF for i in range(65536))
    b = TileBuilder()
    b.stored_block(payload[:65535], False)
    b.stored_block(payload[65535:], True)
    assert decode_tile(b.finish(), 65536) == payload


def test_symbol_285_long_match_65535() -> None:
    """Symbol 285 = base 3 + 16 extra bits: one literal plus a 65535-byte match fills a tile."""
    tokens = [0x5A, (65535, 1)]
    b = TileBuilder()
    b.huffman_block(tokens, True)
    assert decode_tile(b.finish(), 65536) == b"\x5a" * 65536


def test_symbol_285_extra_bits_decode_258_and_beyond() -> None:
    """Lengths 258 and 300 go through 285 (16 extra bits), 257 through 284."""
    tokens = [1, 2, (257, 2), (258, 1), (300, 2)]
    b = TileBuilder()
    b.huffman_block(tokens, True)
    data = expand(tokens)
    assert decode_tile(b.finish(), len(data)) == data


def test_match_length_65538_overflows_tile() -> None:
    """The largest encodable length (285 with extra 0xFFFF = 65538) cannot fit a 64 KiB tile:
    it must be rejected, not written past the tile."""
    b = TileBuilder()
    b.huffman_block([0, (65538, 1)], True)
    with pytest.raises(CorruptDataError, match="overflows"):
        decode_tile(b.finish(), 65536)


def test_distance_codes_30_31_and_hdist_32() -> None:
    """Distance 65532 uses code 31 (base 49153, 14 extra bits), 33000 uses code 30 (base 32769);
    either dynamic header then has HDIST = 32."""
    head = bytes((i * 7 + (i >> 9)) & 0xFF for i in range(40000))
    mid = bytes((i * 11 + 3) & 0xFF for i in range(25532))
    tokens: list = list(head) + list(mid) + [(3, 65532)]  # 65532 literals, then 3 bytes from the start: code 31
    tokens2: list = list(head) + [(3, 33000)]  # code 30
    b = TileBuilder()
    b.huffman_block(tokens, True)
    assert b.hdist == 32
    data = expand(tokens)
    assert len(data) == 65535
    assert decode_tile(b.finish(), len(data)) == data
    b = TileBuilder()
    b.huffman_block(tokens2, True, extra_dist_syms=(31,))
    assert b.hdist == 32
    data = expand(tokens2)
    assert decode_tile(b.finish(), len(data)) == data


def test_window_is_the_whole_tile() -> None:
    """The last possible match of a full tile (3 bytes at position 65533) may copy from the
    tile's first byte: distance 65533, code 31 -- a 32 KiB window would break here."""
    tokens: list = [0xAB] + [i & 0x7F for i in range(65532)] + [(3, 65533)]
    b = TileBuilder()
    b.huffman_block(tokens, True)
    data = expand(tokens)
    assert len(data) == 65536 and data[-3] == 0xAB  # the copy starts at the tile's first byte
    assert decode_tile(b.finish(), 65536) == data


def test_distance_65536_reaching_before_tile_is_rejected() -> None:
    """Distance 65536 (code 31, extra 16383) exists in the format but can never be valid inside a
    64 KiB tile: it must be an error, never a read before the tile."""
    b = TileBuilder()
    b.huffman_block([1, 2, 3, (3, 65536)], True)
    with pytest.raises(CorruptDataError, match="distance"):
        decode_tile(b.finish(), 6)


def test_refill_rule_is_strictly_less_than_32() -> None:
    """A lane holding exactly 32 bits is not refilled. The stream below hits that case; built
    with the README's wrong "<= 32" rule its words land elsewhere and it no longer decodes to
    the same bytes."""
    tokens: list = [(i * 5) & 0xFF for i in range(300)] + [(20, 7), (4, 100)] * 20
    data = expand(tokens)
    good = TileBuilder()
    good.huffman_block(tokens, True)
    assert good.saw_exactly_32
    assert decode_tile(good.finish(), len(data)) == data
    wrong = TileBuilder(refill_le=True)
    wrong.huffman_block(tokens, True)
    try:
        assert decode_tile(wrong.finish(), len(data)) != data
    except CorruptDataError:
        pass


def test_end_of_block_sweep_then_next_block() -> None:
    """Matches whose distances are still pending at EOB are finished in the sweep (EOB lane
    first), and the next block starts again at lane 0 with every lane's bits carried over."""
    first = [10, 20, 30, 40, (5, 2), (7, 4), (9, 1)]  # three pending distances at EOB
    second = [50, (30, 3), 60]
    b = TileBuilder()
    b.huffman_block(first, False, dynamic=False)
    b.huffman_block(second, False)
    b.huffman_block([(12, 8)], True, dynamic=False)
    data = expand(first + second + [(12, 8)])
    assert decode_tile(b.finish(), len(data)) == data


def test_dynamic_block_with_many_symbols_over_several_rounds() -> None:
    """A dynamic block whose code-length items wrap around the 32 lanes several times."""
    tokens: list = list(range(256)) + [(3 + i % 200, 1 + i % 255) for i in range(300)]
    b = TileBuilder()
    b.huffman_block(tokens, True)
    data = expand(tokens)
    assert decode_tile(b.finish(), len(data)) == data


def test_trailing_zero_words_missing_are_read_as_zero() -> None:
    """A tile whose last all-zero words are omitted still decodes (reads past the end are zeros)."""
    b = TileBuilder()
    b.huffman_block([0x41], True, dynamic=False)
    tile = b.finish().rstrip(b"\0")
    assert decode_tile(tile, 1) == b"A"


def test_endless_empty_stored_blocks_terminate() -> None:
    """All-zero tile data means endless non-final empty stored blocks: a bounded error, no hang."""
    with pytest.raises(CorruptDataError, match="ends too early"):
        decode_tile(bytes(4096), 10)
