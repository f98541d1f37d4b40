"""A tiny bit-level GDeflate tile builder for tests, written from the format notes' encoder rules.

Each lane is an LSB-first bit string; every item is appended to one lane; a simulated decoder
count per lane decides when the decoder would load the next 32-bit word (fewer than 32 bits held
-> one word), and that word slot is reserved for the lane at that moment. Tokens are
``int`` (a literal byte) or ``(length, distance)``. Huffman codes are built from the tokens.
"""

from __future__ import annotations

import heapq
import struct
from collections import Counter

PRECODE_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 3]
LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 16]
DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049,
             3073, 4097, 6145, 8193, 12289, 16385, 24577, 32769, 49153]
DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14]


def length_code(length: int) -> tuple[int, int, int]:
    """(symbol, extra value, extra bits): 284 covers 227..257, 285 = 3 + 16 extra bits."""
    if length >= 258:
        return 285, length - 3, 16
    for i in range(27, -1, -1):
        if LEN_BASE[i] <= length:
            return 257 + i, length - LEN_BASE[i], LEN_EXTRA[i]
    raise ValueError(length)


def dist_code(dist: int) -> tuple[int, int, int]:
    for i in range(31, -1, -1):
        if DIST_BASE[i] <= dist:
            return i, dist - DIST_BASE[i], DIST_EXTRA[i]
    raise ValueError(dist)


def huffman_lengths(freqs: dict[int, int], max_len: int = 15) -> dict[int, int]:
    """Plain Huffman code lengths (tests keep alphabets small, so no length limiting needed)."""
    items = [(f, s) for s, f in freqs.items() if f > 0]
    if len(items) == 1:
        s = items[0][1]
        items.append((1, 0 if s != 0 else 1))
    heap = [(f, i, [s]) for i, (f, s) in enumerate(items)]
    heapq.heapify(heap)
    depth = {s: 0 for _, s in items}
    n = len(heap)
    while len(heap) > 1:
        f1, _, a = heapq.heappop(heap)
        f2, _, b = heapq.heappop(heap)
        for s in a + b:
            depth[s] += 1
        heapq.heappush(heap, (f1 + f2, n, a + b))
        n += 1
    assert max(depth.values()) <= max_len
    return depth


def canonical_codes(lens: list[int]) -> list[int]:
    """Bit-reversed canonical codes (ready to append LSB first)."""
    count = Counter(lens)
    count[0] = 0
    code, nxt = 0, {}
    for bits in range(1, 16):
        code = (code + count[bits - 1]) << 1
        nxt[bits] = code
    out = []
    for ln in lens:
        if ln == 0:
            out.append(0)
            continue
        c = nxt[ln]
        nxt[ln] += 1
        out.append(int(f"{c:0{ln}b}"[::-1], 2))
    return out


class TileBuilder:
    def __init__(self, *, refill_le: bool = False) -> None:
        # refill_le=True builds with the README's wrong "<= 32" rule (for a negative test).
        self.refill_le = refill_le
        self.words: list[int] = []
        self.acc = [0] * 32
        self.nbits = [0] * 32
        self.avail = [0] * 32
        self.slots: list[list[int]] = [[] for _ in range(32)]
        self.saw_exactly_32 = False  # a check found exactly 32 bits (the "< 32" rule matters)
        for lane in range(32):
            self._reserve(lane)
            self.avail[lane] = 32

    def _reserve(self, lane: int) -> None:
        self.slots[lane].append(len(self.words))
        self.words.append(0)

    def put(self, lane: int, value: int, n: int) -> None:
        assert 0 <= value < (1 << n) or n == 0
        self.acc[lane] |= value << self.nbits[lane]
        self.nbits[lane] += n
        self.avail[lane] -= n
        assert self.avail[lane] >= 0, "a step used more bits than the lane held"
        while self.nbits[lane] >= 32:
            self.words[self.slots[lane].pop(0)] = self.acc[lane] & 0xFFFFFFFF
            self.acc[lane] >>= 32
            self.nbits[lane] -= 32

    def check(self, lane: int) -> None:
        if self.avail[lane] == 32:
            self.saw_exactly_32 = True
        if self.avail[lane] < 32 or (self.refill_le and self.avail[lane] <= 32):
            self._reserve(lane)
            self.avail[lane] += 32

    # -------------------------------------------------------------- blocks
    def stored_block(self, data: bytes, final: bool) -> None:
        assert len(data) <= 65535
        self.put(0, int(final), 1)
        self.put(0, 0, 2)
        self.check(0)
        self.put(0, len(data), 16)
        for k, byte in enumerate(data):
            self.put(k % 32, byte, 8)
            self.check(k % 32)
        for j in range(32):
            self.check((len(data) + j) % 32)

    def huffman_block(self, tokens: list, final: bool, *, dynamic: bool = True,
                      extra_dist_syms: tuple[int, ...] = ()) -> None:
        if dynamic:
            lit_f: Counter[int] = Counter({256: 1})
            dist_f: Counter[int] = Counter()
            for t in tokens:
                if isinstance(t, int):
                    lit_f[t] += 1
                else:
                    lit_f[length_code(t[0])[0]] += 1
                    dist_f[dist_code(t[1])[0]] += 1
            for s in extra_dist_syms:  # e.g. force HDIST = 32
                dist_f[s] += 1
            if not dist_f:
                dist_f[0] = 1
            ll = huffman_lengths(dict(lit_f))
            dl = huffman_lengths(dict(dist_f))
            lit_lens = [ll.get(s, 0) for s in range(288)]
            dist_lens = [dl.get(s, 0) for s in range(32)]
        else:
            lit_lens = [8] * 144 + [9] * 112 + [7] * 24 + [8] * 8
            dist_lens = [5] * 32
        self.put(0, int(final), 1)
        self.put(0, 2 if dynamic else 1, 2)
        self.check(0)
        if dynamic:
            self._dynamic_header(lit_lens, dist_lens)
        lit_codes, dist_codes = canonical_codes(lit_lens), canonical_codes(dist_lens)

        def put_dist(lane: int, dist: int) -> None:
            s, v, n = dist_code(dist)
            self.put(lane, dist_codes[s], dist_lens[s])
            self.put(lane, v, n)

        pending: dict[int, int] = {}
        lane, i = 0, 0
        while True:
            if lane in pending:
                put_dist(lane, pending.pop(lane))
            elif i == len(tokens):
                self.put(lane, lit_codes[256], lit_lens[256])
                break  # no refill check for the EOB step
            elif isinstance(tokens[i], int):
                self.put(lane, lit_codes[tokens[i]], lit_lens[tokens[i]])
                i += 1
            else:
                length, dist = tokens[i]
                s, v, n = length_code(length)
                self.put(lane, lit_codes[s], lit_lens[s])
                self.put(lane, v, n)
                pending[lane] = dist
                i += 1
            self.check(lane)
            lane = (lane + 1) % 32
        for j in range(32):  # end-of-block sweep, EOB lane first
            m = (lane + j) % 32
            if m in pending:
                put_dist(m, pending.pop(m))
            self.check(m)

    def _dynamic_header(self, lit_lens: list[int], dist_lens: list[int]) -> None:
        hlit = max(257, max(i for i, v in enumerate(lit_lens) if v) + 1)
        hdist = max(1, max((i for i, v in enumerate(dist_lens) if v), default=0) + 1)
        seq = lit_lens[:hlit] + dist_lens[:hdist]
        pre_f = Counter(seq)  # no run-length items: one precode item per length
        pl = huffman_lengths(dict(pre_f), 7)
        pre_lens = [pl.get(s, 0) for s in range(19)]
        hclen = max(4, max(i for i, s in enumerate(PRECODE_ORDER) if pre_lens[s]) + 1)
        self.put(0, hlit - 257, 5)
        self.put(0, hdist - 1, 5)
        self.put(0, hclen - 4, 4)
        self.check(0)
        for i in range(hclen):
            self.put(i, pre_lens[PRECODE_ORDER[i]], 3)
            self.check(i)
        pre_codes = canonical_codes(pre_lens)
        for j, v in enumerate(seq):
            self.put(j % 32, pre_codes[v], pre_lens[v])
            self.check(j % 32)
        self.hdist = hdist

    def finish(self) -> bytes:
        for lane in range(32):
            if self.nbits[lane]:
                self.words[self.slots[lane].pop(0)] = self.acc[lane]
                self.nbits[lane] = 0
        return struct.pack(f"<{len(self.words)}I", *self.words)


def container(tiles: list[bytes], sizes: list[int]) -> bytes:
    """Wrap bare tiles into a tile stream; sizes are the uncompressed tile sizes."""
    n = len(tiles)
    total = sum(sizes)
    head = struct.pack("<BBHI", 4, 0xFB, n, 1 | ((total % 65536) << 2))
    table = [len(tiles[-1])]
    off = 0
    for t in tiles[:-1]:
        off += len(t)
        table.append(off)
    return head + struct.pack(f"<{n}I", *table) + b"".join(tiles)


def expand(tokens: list) -> bytes:
    """What a token list decodes to."""
    out = bytearray()
    for t in tokens:
        if isinstance(t, int):
            out.append(t)
        else:
            length, dist = t
            for _ in range(length):
                out.append(out[-dist])
    return bytes(out)
