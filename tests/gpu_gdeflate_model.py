"""A slow, sequential GDeflate tile decoder in pure Python (docs/gdeflate-format.md §2.9).

Test helper only: an independent model that the GPU output is compared against where no
.bin original exists, and that tells which tile and byte differ when a shader is wrong.
"""

from __future__ import annotations

import struct

LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 3]
LEN_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [16]
DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
             4097, 6145, 8193, 12289, 16385, 24577, 32769, 49153]
DIST_EXTRA = [0, 0, 0, 0] + [i // 2 for i in range(2, 30)]
ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]


class ModelError(Exception):
    pass


def _codes(lens):
    """{(length, code): symbol} for canonical codes (code MSB-first)."""
    count = [0] * 16
    for ln in lens:
        count[ln] += 1
    count[0] = 0
    code, first = 0, [0] * 16
    for ln in range(1, 16):
        code = (code + count[ln - 1]) << 1
        first[ln] = code
    table = {}
    for sym, ln in enumerate(lens):
        if ln:
            table[(ln, first[ln])] = sym
            first[ln] += 1
    used = sum(count[ln] << (15 - ln) for ln in range(1, 16))
    if used > 1 << 15:
        raise ModelError("over-subscribed code")
    if used < 1 << 15:
        if used == 0 or (used == 1 << 14 and count[1] == 1):
            only = next((s for s, ln in enumerate(lens) if ln == 1), 0)
            return {(1, 0): only, (1, 1): only}
        raise ModelError("incomplete code")
    return table


def decode_tile(tile: bytes, out_size: int) -> bytes:
    words = struct.unpack_from(f"<{len(tile) // 4}I", tile)
    ptr = 0
    buf = [0] * 32
    avail = [0] * 32

    def word():
        nonlocal ptr
        w = words[ptr] if ptr < len(words) else 0
        ptr += 1
        return w

    for lane in range(32):
        buf[lane] = word()
        avail[lane] = 32

    def refill(lane):
        if avail[lane] < 32:
            buf[lane] |= word() << avail[lane]
            avail[lane] += 32

    def take(lane, n):
        v = buf[lane] & ((1 << n) - 1)
        buf[lane] >>= n
        avail[lane] -= n
        return v

    def huff(lane, table):
        code = 0
        for ln in range(1, 16):
            code = (code << 1) | take(lane, 1)
            if (ln, code) in table:
                return table[(ln, code)]
        raise ModelError("bad code")

    out = bytearray()
    final = 0
    while not final:
        final = take(0, 1)
        btype = take(0, 2)
        refill(0)
        if btype == 0:
            n = take(0, 16)
            for k in range(n):
                out.append(take(k % 32, 8))
                refill(k % 32)
            for j in range(32):
                refill((n + j) % 32)
            continue
        if btype == 3:
            raise ModelError("block type 3")
        if btype == 2:
            hlit = take(0, 5) + 257
            hdist = take(0, 5) + 1
            hclen = take(0, 4) + 4
            refill(0)
            pre = [0] * 19
            for i in range(hclen):
                pre[ORDER[i]] = take(i, 3)
                refill(i)
            pt = _codes(pre)
            lens: list[int] = []
            lane = 0
            while len(lens) < hlit + hdist:
                s = huff(lane, pt)
                if s < 16:
                    lens.append(s)
                elif s == 16:
                    if not lens:
                        raise ModelError("repeat with no previous length")
                    lens += [lens[-1]] * (3 + take(lane, 2))
                elif s == 17:
                    lens += [0] * (3 + take(lane, 3))
                else:
                    lens += [0] * (11 + take(lane, 7))
                refill(lane)
                lane = (lane + 1) % 32
            lens = lens[: hlit + hdist]
            lt, dt = _codes(lens[:hlit]), _codes(lens[hlit:])
        else:
            lt = _codes([8] * 144 + [9] * 112 + [7] * 24 + [8] * 8)
            dt = _codes([5] * 32)
        pending: list = [None] * 32

        def do_distance(m):
            s = huff(m, dt)
            d = DIST_BASE[s] + take(m, DIST_EXTRA[s])
            pos, ln = pending[m]
            if d > pos:
                raise ModelError("distance too far")
            for k in range(ln):
                out[pos + k] = out[pos + k - d]
            pending[m] = None

        lane = 0
        while True:
            if pending[lane]:
                do_distance(lane)
            else:
                s = huff(lane, lt)
                if s < 256:
                    out.append(s)
                elif s == 256:
                    break
                else:
                    if s > 285:
                        raise ModelError("symbol 286/287")
                    ln = LEN_BASE[s - 257] + take(lane, LEN_EXTRA[s - 257])
                    pending[lane] = (len(out), ln)
                    out += bytes(ln)
            if len(out) > out_size:
                raise ModelError("output overflow")
            refill(lane)
            lane = (lane + 1) % 32
        for j in range(32):
            m = (lane + j) % 32
            if pending[m]:
                do_distance(m)
            refill(m)
    if len(out) != out_size:
        raise ModelError(f"tile decoded to {len(out)} bytes, expected {out_size}")
    return bytes(out)


def split_tiles(stream: bytes) -> list[tuple[bytes, int]]:
    """(tile bytes, decoded size) for each tile of a well-formed tile stream."""
    n = stream[2] | stream[3] << 8
    last = (struct.unpack_from("<I", stream, 4)[0] >> 2) & 0x3FFFF or 65536
    tab = struct.unpack_from(f"<{n}I", stream, 8)
    offs = [0] + list(tab[1:]) + [(tab[-1] if n > 1 else 0) + tab[0]]
    data = 8 + 4 * n
    return [(stream[data + offs[i]: data + offs[i + 1]], 65536 if i < n - 1 else last) for i in range(n)]


def decode_stream(stream: bytes) -> bytes:
    return b"".join(decode_tile(t, size) for t, size in split_tiles(stream))
