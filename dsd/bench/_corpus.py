"""Deterministic benchmark corpora: no system files, no floating point, same bytes everywhere.

The mix follows the shared GDeflate conformance inputs (make_inputs.py): English-like text,
C-like source, little-endian binary records (ELF/asset-table-like), random bytes, zero runs and
short repeating patterns, in segments of 4..260 KiB.
"""

from __future__ import annotations

import hashlib

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if so no will can more about said out up them "
    "into what some time could than other only new storage tile stream decode buffer queue request file block "
    "header offset length kernel thread memory page cache device driver compress deflate huffman literal "
    "distance window match table symbol code bit byte word frame texture asset level shader mesh data fast slow "
    "quick brown fox jumps over lazy dog river mountain city"
).split()


def _stream(seed: str, n: int) -> bytes:
    return hashlib.shake_256(seed.encode()).digest(n)


def text(seed: str, n: int) -> bytes:
    r = _stream(seed, 2 * n + 64)
    out = bytearray()
    i = col = sent = 0
    while len(out) < n:
        a, b = r[i], r[i + 1]
        i = (i + 2) % (len(r) - 2)
        w = WORDS[(a * 256 + b) % len(WORDS)]
        if sent == 0:
            w = w.capitalize()
        out += w.encode()
        sent += 1
        col += len(w)
        if b % 11 == 0 and sent > 3:
            out += b"."
            sent = 0
        elif b % 13 == 0:
            out += b","
        if col > 72:
            out += b"\n"
            col = 0
        elif a % 97 == 0:
            out += b"\n\n"
            col = 0
        else:
            out += b" "
            col += 1
    return bytes(out[:n])


def code(seed: str, n: int) -> bytes:
    r = _stream(seed, n + 64)
    ids = ["tile", "offset", "len", "buf", "queue", "req", "n", "i", "ctx", "hdr", "out", "in_ptr"]
    templates = [
        "    if ({a} >= {b}) return -{k};\n", "    {a} = {b} + {k};\n",
        "static int {a}_{b}(struct {a} *{b}, size_t {a}_len)\n{{\n", "    for (size_t {a} = 0; {a} < {b}; {a}++) {{\n",
        "    }}\n", "}}\n\n", "    memcpy({a} + {k}, {b}, sizeof(*{b}));\n", "/* {a}: {b} {k} */\n",
        "#define {A}_{B} 0x{k:04x}u\n",
    ]
    out = bytearray()
    i = 0
    while len(out) < n:
        t = templates[r[i] % len(templates)]
        a, b = ids[r[i + 1] % len(ids)], ids[r[i + 2] % len(ids)]
        out += t.format(a=a, b=b, k=r[i + 3] * 7 + 1, A=a.upper(), B=b.upper()).encode()
        i = (i + 4) % (len(r) - 4)
    return bytes(out[:n])


def records(seed: str, n: int) -> bytes:
    r = _stream(seed, n + 64)
    out = bytearray()
    i = rid = 0
    while len(out) < n:
        name = WORDS[r[i] % len(WORDS)].encode()[:8].ljust(8, b"\0")
        out += rid.to_bytes(4, "little") + (r[i + 1] % 64).to_bytes(2, "little") + name
        out += ((rid * 4096) & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0"
        rid += 1
        i = (i + 2) % (len(r) - 2)
    return bytes(out[:n])


def mixed(seed: str, n: int) -> bytes:
    plan = _stream(seed + "/plan", 4096)
    out = bytearray()
    k = 0
    while len(out) < n:
        seg = 4096 * (1 + plan[k % 4096] % 64) + plan[(k + 1) % 4096]
        kind = plan[(k + 2) % 4096] % 10
        s = f"{seed}/{k}"
        k += 3
        if kind < 3:
            out += text(s, seg)
        elif kind < 5:
            out += code(s, seg)
        elif kind < 7:
            out += records(s, seg)
        elif kind == 7:
            out += _stream(s, seg // 2)
        elif kind == 8:
            out += bytes(seg)
        else:
            pat = b"ABCDABCDABCDEFGH0123456789abcdef"
            out += (pat * (seg // len(pat) + 1))[:seg]
    return bytes(out[:n])
