// GDeflate tile decoder: one group of 32 lanes decodes one 64 KiB tile (docs/gpu.md).
//
// Included by two entry files that pick how the 32 lanes talk to each other:
//   gdeflate_wave32.comp        DSD_WAVE32: the lanes are one 32-wide subgroup (ballot, prefix sum,
//                               shuffle in registers); several tiles per workgroup, one per subgroup.
//   gdeflate_lanes_shared.comp  the lanes are a 32-invocation workgroup and talk through shared
//                               memory and barrier(); works with any subgroup size (lavapipe: 8).
//
// Every helper that exchanges values between lanes is called from uniform control flow only,
// so the shared-memory variant never reaches a barrier with part of the group.
//
// Safety: every input word read is checked against its tile's bytes, every output byte against
// its tile's window, and each tile has a step budget; a bad tile records an error code for its
// stream and the group moves on to the next tile.

#extension GL_EXT_shader_8bit_storage : require
#extension GL_ARB_gpu_shader_int64 : require
#ifdef DSD_TILE_CLOCK
// Profiling build: each tile's start and end on the device clock (needs VK_KHR_shader_clock's
// shaderDeviceClock, which the host enables under DSD_GPU_TILE_CLOCK=1).
#extension GL_EXT_shader_realtime_clock : require
#endif
#ifdef DSD_TABLE_NO_UNROLL
// A/B: keep the table builder's per-length ballot loops rolled (smaller code).
#extension GL_EXT_control_flow_attributes : require
#define TABLE_LOOP [[dont_unroll]]
#else
#define TABLE_LOOP
#endif

#ifdef DSD_WAVE32
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_shuffle : require
// Tiles per workgroup (one per subgroup); the host's dispatch math must agree (decoder.py).
#ifndef WAVE_SLOTS
#define WAVE_SLOTS 4
#endif
#define SLOTS uint(WAVE_SLOTS)
layout(local_size_x = 32 * WAVE_SLOTS) in;
#else
#define SLOTS 1u
layout(local_size_x = 32) in;
#endif

// Error codes; keep in step with daemon/gpu/errors.py.
#define E_TILE_RANGE 2u
#define E_BLOCK_TYPE 3u
#define E_BAD_CODE_LENGTHS 4u
#define E_BAD_SYMBOL 5u
#define E_DISTANCE 6u
#define E_OUTPUT_OVERFLOW 7u
#define E_OUTPUT_SHORT 8u
#define E_OVERREAD 9u
#define E_BUDGET 10u

#define TILE_BYTES 65536u
#define OVERREAD_WORDS 64u

struct Stream {
    uint in_off;      // byte offset of the tile stream in `words` (4-byte aligned)
    uint in_len;      // bytes of the tile stream
    uint out_off;     // byte offset of the stream's output in `outb`
    uint out_len;     // decoded size of the stream
    uint num_tiles;
    uint tile_base;   // index of this stream's first tile in the batch
    uint last_size;   // decoded size of the last tile (1..65536)
    uint reserved;
};

layout(std430, set = 0, binding = 0) readonly buffer InWords { uint words[]; };
// Matches read bytes that other lanes of the group just wrote, after a barrier, so the output
// must be coherent among the lanes: with the Vulkan memory model (wave32 build) at subgroup
// scope only, which lets the driver keep those reads in the SM's L1; otherwise plain coherent.
#ifndef OUT_QUALIFIER
#define OUT_QUALIFIER coherent
#endif
layout(std430, set = 0, binding = 1) OUT_QUALIFIER buffer OutBytes { uint8_t outb[]; };
#if defined(DSD_SOLO_WORDS) || defined(DSD_COOP_WORDS)
// The same output buffer seen as words, for word-wide match copies. Every word read through it
// either holds bytes written before the last sync_out (a memory barrier covers all storage-buffer
// memory, whichever view wrote it) or bytes the copy does not use.
layout(std430, set = 0, binding = 1) OUT_QUALIFIER buffer OutWords { uint outw[]; };
#endif
layout(std430, set = 0, binding = 2) readonly buffer Streams { Stream streams[]; };
// The same buffer as words: with pc.persistent's TILE_ORDER bit, the words after the stream
// records list the batch's tiles in the order the work counter hands them out (costly first).
layout(std430, set = 0, binding = 2) readonly buffer StreamWords { uint swords[]; };
#define PERSISTENT 1u
#define TILE_ORDER 2u
// ctl[0]: next tile (work counter), zeroed by the host before each submit. In device memory
// (every tile's atomic stays on the GPU); the host only ever writes it.
layout(std430, set = 0, binding = 3) coherent buffer Control { uint ctl[]; };
// sts[0]: failed tiles; sts[1 + s]: status of stream s (0 = ok, else code | tile << 16). In host
// memory, written only when a tile fails, so the host's per-batch read of sts[0] is a cached
// read (a read of device memory through a mapping costs microseconds on some systems).
layout(std430, set = 0, binding = 4) coherent buffer Status { uint sts[]; };

layout(push_constant) uniform Push {
    uint total_tiles;
    uint num_streams;
    uint step_budget;
    uint persistent;  // PERSISTENT | TILE_ORDER bits
} pc;

const uint LEN_BASE[29] = uint[29](3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 13u, 15u, 17u, 19u, 23u, 27u,
    31u, 35u, 43u, 51u, 59u, 67u, 83u, 99u, 115u, 131u, 163u, 195u, 227u, 3u);
const uint LEN_EXTRA[29] = uint[29](0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 1u, 1u, 1u, 1u, 2u, 2u, 2u, 2u,
    3u, 3u, 3u, 3u, 4u, 4u, 4u, 4u, 5u, 5u, 5u, 5u, 16u);
const uint DIST_BASE[32] = uint[32](1u, 2u, 3u, 4u, 5u, 7u, 9u, 13u, 17u, 25u, 33u, 49u, 65u, 97u,
    129u, 193u, 257u, 385u, 513u, 769u, 1025u, 1537u, 2049u, 3073u, 4097u, 6145u, 8193u, 12289u,
    16385u, 24577u, 32769u, 49153u);
// Run 20 (H200): one value path and one scan per round are the wave32 default (+2.9% on the game
// corpus, +3.3% on the conformance mix); DSD_SPLIT_VALUE / DSD_TWO_SCANS restore the old code
// (A/B), DSD_ONE_VALUE / DSD_SCAN_ONCE turn them on in the shared-memory build.
#if defined(DSD_WAVE32) && !defined(DSD_SPLIT_VALUE) && !defined(DSD_ONE_VALUE)
#define DSD_ONE_VALUE 1
#endif
#if defined(DSD_WAVE32) && !defined(DSD_TWO_SCANS) && !defined(DSD_SCAN_ONCE)
#define DSD_SCAN_ONCE 1
#endif
#ifdef DSD_ONE_VALUE
// A round's value (base | extra bits << 16) in one table: 0..28 lengths 257..285, 29 literal
// or end of block (nothing), 30..61 distances 0..31.
const uint VALUE_TAB[62] = uint[62](
    3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 65547u, 65549u, 65551u, 65553u, 131091u, 131095u, 131099u,
    131103u, 196643u, 196651u, 196659u, 196667u, 262211u, 262227u, 262243u, 262259u, 327811u,
    327843u, 327875u, 327907u, 1048579u, 0u, 1u, 2u, 3u, 4u, 65541u, 65543u, 131081u, 131085u,
    196625u, 196633u, 262177u, 262193u, 327745u, 327777u, 393345u, 393409u, 459009u, 459137u,
    524801u, 525057u, 590849u, 591361u, 657409u, 658433u, 724993u, 727041u, 794625u, 798721u,
    868353u, 876545u, 950273u, 966657u);
#endif
const uint PRECODE_ORDER[19] = uint[19](16u, 17u, 18u, 0u, 8u, 7u, 9u, 6u, 10u, 5u, 11u, 4u, 12u,
    3u, 13u, 2u, 14u, 1u, 15u);

// Huffman tables, per slot: 0 = litlen, 1 = distance, 2 = precode. Canonical decoding: lim[t][L]
// is the left-aligned (15-bit) end of the codes of length <= L, base[t][L] maps a code of
// length L to its index in the sorted symbol list.
#define T_LITLEN 0u
#define T_DIST 1u
#define T_PRE 2u
#define SYMS_LITLEN 0u
#define SYMS_DIST 288u
#define SYMS_PRE 320u
shared uint s_lim[SLOTS][3][16];
shared int s_base[SLOTS][3][16];
shared uint s_syms[SLOTS][340];
shared uint s_lens[SLOTS][320];
shared uint s_cnt[SLOTS][16];
#ifdef DSD_SEARCH4
// A/B: the canonical search as a two-level 4-ary search over 128-bit shared loads (2 dependent
// loads, then the symbol) instead of a binary search (4 dependent loads, then base, then the
// symbol). s_sum[t] = (lim[4], lim[8], lim[12], -); s_grp[t][g] word j = lim[4g + j + 1] << 16
// | (base[4g + j + 1] + 32768): the lengths 4g + 1 .. 4g + 4 with their bases in the same load
// (lim <= 32768 and base in [-32767, 288], so both fit 16 bits). Filled after each table build.
shared uvec4 s_sum[SLOTS][3];
shared uvec4 s_grp[SLOTS][3][4];
#ifdef DSD_SEARCH4_REG
// The first level of the litlen and distance tables in registers (uniform, reloaded after each
// table build): one dependent shared load fewer per walk, 6 registers more.
uvec4 g_sum_lit;
uvec4 g_sum_dist;
#endif
#endif
#ifdef DSD_LUT
// First-level lookup for short codes (default litlen: 9 bits, distance: 8 bits), filled after each
// table build: sym | len << 16, 0 = longer (or invalid). DSD_LUT16: two 16-bit entries per word
// (sym | len << 9), half the shared memory, so wider tables fit without costing occupancy.
#ifndef LUT_LITLEN_BITS
#define LUT_LITLEN_BITS 9u
#endif
#ifndef LUT_DIST_BITS
#define LUT_DIST_BITS 8u
#endif
#define LUT_DIST_BASE (1u << LUT_LITLEN_BITS)
#ifdef DSD_LUT16
shared uint s_lut[SLOTS][(LUT_DIST_BASE + (1u << LUT_DIST_BITS)) / 2u];
#else
shared uint s_lut[SLOTS][LUT_DIST_BASE + (1u << LUT_DIST_BITS)];
#endif
#endif
shared uint s_val[SLOTS][32];

// ---------------------------------------------------------------------------------------------
// Lane exchange primitives.
#ifdef DSD_WAVE32
#define LANE gl_SubgroupInvocationID
#define SLOT gl_SubgroupID
uint lane_ballot(bool b) { return subgroupBallot(b).x; }
uint lane_prefix(uint v) { return subgroupExclusiveAdd(v); }
uint lane_sum(uint v) { return subgroupAdd(v); }
uint lane_max_incl(uint v) { return subgroupInclusiveMax(v); }
uint lane_or(uint v) { return subgroupOr(v); }
uint lane_read(uint v, uint src) { return subgroupShuffle(v, src); }
uint lane_incl(uint v) { return subgroupInclusiveAdd(v); }
uint lane_last(uint v) { return subgroupBroadcast(v, 31u); }
void sync_out() { subgroupMemoryBarrierBuffer(); subgroupBarrier(); }
void sync_shared() { subgroupMemoryBarrierShared(); subgroupBarrier(); }
#else
#define LANE gl_LocalInvocationID.x
#define SLOT 0u
shared uint s_xch[32];
// Every emulated subgroup operation: each lane publishes one word, then reads the others'. The
// first barrier keeps the previous operation's readers ahead of this one's writers.
void lane_publish(uint v) {
    barrier();
    s_xch[LANE] = v;
    barrier();
}
uint lane_ballot(bool b) {
    lane_publish(b ? 1u : 0u);
    uint m = 0u;
    for (uint i = 0u; i < 32u; i++) m |= s_xch[i] << i;
    return m;
}
uint lane_prefix(uint v) {
    lane_publish(v);
    uint acc = 0u;
    for (uint i = 0u; i < LANE; i++) acc += s_xch[i];
    return acc;
}
uint lane_sum(uint v) {
    lane_publish(v);
    uint acc = 0u;
    for (uint i = 0u; i < 32u; i++) acc += s_xch[i];
    return acc;
}
uint lane_max_incl(uint v) {
    lane_publish(v);
    uint acc = 0u;
    for (uint i = 0u; i <= LANE; i++) acc = max(acc, s_xch[i]);
    return acc;
}
uint lane_or(uint v) {
    lane_publish(v);
    uint acc = 0u;
    for (uint i = 0u; i < 32u; i++) acc |= s_xch[i];
    return acc;
}
uint lane_read(uint v, uint src) {
    lane_publish(v);
    return s_xch[src];
}
uint lane_incl(uint v) { return lane_prefix(v) + v; }
uint lane_last(uint v) { return lane_read(v, 31u); }
void sync_out() { memoryBarrierBuffer(); barrier(); }
void sync_shared() { memoryBarrierShared(); barrier(); }
#endif

// ---------------------------------------------------------------------------------------------
// Per-lane bit reader over one tile; `rp` (words handed out so far) is the same in every lane.
uint64_t g_buf;
uint g_avail;
uint g_rp;
#ifdef DSD_STATE_SHARED
// A/B: the tile's bounds (the same in every lane) in shared memory instead of four registers
// per lane; written by lane 0 before the tile starts.
shared uint s_state[SLOTS][4];
#define g_tb s_state[SLOT][0]
#define g_te s_state[SLOT][1]
#define g_ob s_state[SLOT][2]
#define g_osize s_state[SLOT][3]
#else
uint g_tb;   // first byte of the tile in `words`
uint g_te;   // one past its last byte
#endif
uint g_err;  // this lane's first error (0 = none)

void fail(uint code) { if (g_err == 0u) g_err = code; }

uint load_word(uint k) {
#ifdef DSD_WORD_FAST
    // A/B: a word wholly inside the tile (nearly every refill) needs no count of the tile's
    // words, no check of the second load (it ends before the word's last byte) and no mask.
    uint bf = g_tb + 4u * k;
    if (bf + 4u <= g_te) {
        uint sf = (bf & 3u) * 8u;
        uint lof = words[bf >> 2];
        if (sf == 0u) return lof;
        return (lof >> sf) | (words[(bf >> 2) + 1u] << (32u - sf));
    }
#endif
    // Words past the tile's end read as zero (format doc §2.8); the caller bounds how far.
    uint tile_len = g_te - g_tb;
    if (k >= (tile_len + 3u) / 4u) return 0u;
    uint b = g_tb + 4u * k;
    uint sh = (b & 3u) * 8u;
    uint lo = words[b >> 2];
    uint v = lo;
    if (sh != 0u) {
        uint hi = ((b >> 2) + 1u) * 4u < g_te ? words[(b >> 2) + 1u] : 0u;
        v = (lo >> sh) | (hi << (32u - sh));
    }
    uint left = g_te - b;
    if (left < 4u) v &= (1u << (left * 8u)) - 1u;
    return v;
}

#ifdef DSD_REFILL_AHEAD
// Read-ahead window: lane i holds word g_wbase + i, loaded one round before it is needed, so a
// refill is a shuffle instead of a global load in the round's critical path.
uint g_wbase;
uint g_win;
void read_ahead() {
    g_wbase = g_rp;
    g_win = load_word(g_rp + LANE);
}
#endif

// Refill check (format doc §2.2) for the lanes that take part, in lane order.
void refill(bool take_part) {
    bool need = take_part && g_avail < 32u;
    uint m = lane_ballot(need);
#ifdef DSD_REFILL_AHEAD
    if (m == 0u) return;  // uniform
    uint k = g_rp + bitCount(m & ((1u << LANE) - 1u));
    uint off = k - g_wbase;
    uint v = lane_read(g_win, off & 31u);
    if (need) {
        g_buf |= uint64_t(off < 32u ? v : load_word(k)) << g_avail;
        g_avail += 32u;
    }
#else
    if (need) {
        uint k = g_rp + bitCount(m & ((1u << LANE) - 1u));
        g_buf |= uint64_t(load_word(k)) << g_avail;
        g_avail += 32u;
    }
#endif
    g_rp += bitCount(m);
}

uint peek32() { return uint(g_buf); }

void consume(uint n) {
    if (n > g_avail) { fail(E_BAD_SYMBOL); n = g_avail; }
    g_buf >>= n;
    g_avail -= n;
}

uint take(uint n) {
    uint v = n == 0u ? 0u : (peek32() & ((1u << n) - 1u));
    if (n == 32u) v = peek32();
    consume(n);
    return v;
}

// ---------------------------------------------------------------------------------------------
// Canonical Huffman table build, one code length per lane (lanes 1..15). Follows libdeflate 1.8:
// over-subscribed codes are errors; an incomplete code is allowed only when it is empty or a
// single code of length 1, and then every 1-bit code decodes to that symbol.
uint search_sym(uint t, uint syms_off, uint bits, out uint clen);

#ifdef DSD_LUT
// The lookup entries of table t, from the canonical search (the index's bits past a code's
// length are zero; a code longer than the index, or none, leaves 0).
void lut_fill(uint t, uint syms_off) {
    uint lbits = t == T_LITLEN ? LUT_LITLEN_BITS : LUT_DIST_BITS;
    uint base = t == T_LITLEN ? 0u : LUT_DIST_BASE;
#ifdef DSD_LUT16
    for (uint i = LANE; i < (1u << lbits) / 2u; i += 32u) {
        uint w = 0u;
        for (uint h = 0u; h < 2u; h++) {
            uint clen;
            uint sym = search_sym(t, syms_off, 2u * i + h, clen);
            w |= ((sym != 0xFFFFFFFFu && clen <= lbits) ? (sym | (clen << 9)) : 0u) << (16u * h);
        }
        s_lut[SLOT][base / 2u + i] = w;
    }
#else
    for (uint i = LANE; i < (1u << lbits); i += 32u) {
        uint clen;
        uint sym = search_sym(t, syms_off, i, clen);
        s_lut[SLOT][base + i] = (sym != 0xFFFFFFFFu && clen <= lbits) ? (sym | (clen << 16)) : 0u;
    }
#endif
    sync_shared();
}
#endif

#ifdef DSD_SEARCH4
// Packs table t's limits and bases for search_sym (after the builder's last sync_shared).
void search4_pack(uint t) {
    uint g = LANE;
    if (g < 4u) {
        uvec4 w;
        for (uint j = 0u; j < 4u; j++) {
            uint L = 4u * g + j + 1u;
            uint lim = L <= 15u ? s_lim[SLOT][t][L] : 0xFFFFu;
            uint b = L <= 15u ? uint(s_base[SLOT][t][L] + 32768) : 0u;
            w[j] = (lim << 16) | (b & 0xFFFFu);
        }
        s_grp[SLOT][t][g] = w;
    } else if (g == 4u) {
        s_sum[SLOT][t] = uvec4(s_lim[SLOT][t][4], s_lim[SLOT][t][8], s_lim[SLOT][t][12], 0xFFFFFFFFu);
    }
    sync_shared();
#ifdef DSD_SEARCH4_REG
    if (t == T_LITLEN) g_sum_lit = s_sum[SLOT][T_LITLEN];
    if (t == T_DIST) g_sum_dist = s_sum[SLOT][T_DIST];
#endif
}
#endif

// With real subgroups (wave32 builds, unless DSD_SERIAL_TABLES) the counts and the placement of
// the symbols go 32 entries at a time through one ballot per code length, instead of each lane
// walking all n lengths twice: a 288-entry table costs ~300 ballots instead of ~600 dependent
// shared loads per lane (the fixed cost of a small tile; docs/gpu.md). DSD_BALLOT_TABLES turns it
// on in the shared-memory build too (slow there; for testing on CPU drivers).
#if (defined(DSD_WAVE32) && !defined(DSD_SERIAL_TABLES)) || defined(DSD_BALLOT_TABLES)
#define BALLOT_TABLES 1
#endif

bool build_table(uint t, uint n, uint syms_off) {
    uint L = LANE;
    uint cnt = 0u;
#ifdef BALLOT_TABLES
    for (uint c = 0u; c < n; c += 32u) {
        uint l = c + LANE < n ? s_lens[SLOT][c + LANE] : 0u;
        TABLE_LOOP for (uint k = 1u; k <= 15u; k++) {
            uint m = lane_ballot(l == k);
            if (L == k) cnt += bitCount(m);
        }
    }
#else
    if (L >= 1u && L <= 15u) {
        for (uint i = 0u; i < n; i++) cnt += s_lens[SLOT][i] == L ? 1u : 0u;
    }
#endif
    uint used = lane_sum((L >= 1u && L <= 15u) ? (cnt << (15u - L)) : 0u);
    uint count1 = lane_read(cnt, 1u);
    if (used > 32768u) return false;
    bool special = used < 32768u;
    if (special && !(used == 0u || (used == 16384u && count1 == 1u))) return false;
    if (special) cnt = L == 1u ? 2u : 0u;
    if (L < 16u) s_cnt[SLOT][L] = cnt;
    sync_shared();
    uint off = 0u;
    if (L >= 1u && L <= 15u) {
        uint code = 0u;
        for (uint j = 1u; j < L; j++) {
            code = (code + s_cnt[SLOT][j]) << 1;
            off += s_cnt[SLOT][j];
        }
        s_lim[SLOT][t][L] = (code + cnt) << (15u - L);
        s_base[SLOT][t][L] = int(off) - int(code);
#ifdef BALLOT_TABLES
        if (false) {
#else
        if (!special) {
#endif
            uint j = off;
            for (uint i = 0u; i < n; i++) {
                if (s_lens[SLOT][i] == L) { s_syms[SLOT][syms_off + j] = i; j++; }
            }
        } else if (L == 1u) {
            uint only = 0u;
            for (uint i = 0u; i < n; i++) if (s_lens[SLOT][i] == 1u) only = i;
            s_syms[SLOT][syms_off] = only;
            s_syms[SLOT][syms_off + 1u] = only;
        }
    }
    if (L == 0u) s_lim[SLOT][t][0] = 0u;
#ifdef BALLOT_TABLES
    if (!special) {  // uniform
        // Symbols in order of (length, index): lane k's `next` is where the next symbol of
        // length k goes; a symbol's place is that plus the lanes below it with its length.
        uint next = off;
        for (uint c = 0u; c < n; c += 32u) {
            uint l = c + LANE < n ? s_lens[SLOT][c + LANE] : 0u;
            uint pos = 0u;
            TABLE_LOOP for (uint k = 1u; k <= 15u; k++) {
                uint m = lane_ballot(l == k);
                uint at = lane_read(next, k);
                if (l == k) pos = at + bitCount(m & ((1u << LANE) - 1u));
                if (L == k) next += bitCount(m);
            }
            if (l != 0u) s_syms[SLOT][syms_off + pos] = c + LANE;
        }
    }
#endif
    sync_shared();
#ifdef DSD_SEARCH4
    search4_pack(t);
#endif
#ifdef DSD_LUT
    if (t != T_PRE) lut_fill(t, syms_off);
#endif
    return true;
}

// Decodes one symbol from the low bits of `bits`; returns 0xFFFFFFFF for a code outside the table.
uint search_sym(uint t, uint syms_off, uint bits, out uint clen);
uint decode_sym(uint t, uint syms_off, uint bits, out uint clen) {
#ifdef DSD_LUT
    if (t != T_PRE) {
        uint idx = t == T_LITLEN ? bits & ((1u << LUT_LITLEN_BITS) - 1u)
                                 : LUT_DIST_BASE + (bits & ((1u << LUT_DIST_BITS) - 1u));
#ifdef DSD_LUT16
        uint e = (s_lut[SLOT][idx >> 1] >> ((idx & 1u) * 16u)) & 0xFFFFu;
        if (e != 0u) { clen = e >> 9; return e & 0x1FFu; }
#else
        uint e = s_lut[SLOT][idx];
        if (e != 0u) { clen = e >> 16; return e & 0xFFFFu; }
#endif
    }
#endif
    return search_sym(t, syms_off, bits, clen);
}

uint search_sym(uint t, uint syms_off, uint bits, out uint clen) {
    uint rev = bitfieldReverse(bits) >> 17;
#if defined(DSD_SEARCH4) && defined(DSD_SEARCH16)
    // Sub-variant: all four groups in four independent 128-bit loads, 15 compares, no second level.
    uvec4 a = s_grp[SLOT][t][0];
    uvec4 b = s_grp[SLOT][t][1];
    uvec4 c4 = s_grp[SLOT][t][2];
    uvec4 d = s_grp[SLOT][t][3];
    uint key = (rev + 1u) << 16;
    uint lo4 = 0u;
    uint sel = a.x;
#define S16(cur, next) { bool le = cur < key; lo4 += le ? 1u : 0u; sel = le ? next : sel; }
    S16(a.x, a.y) S16(a.y, a.z) S16(a.z, a.w) S16(a.w, b.x)
    S16(b.x, b.y) S16(b.y, b.z) S16(b.z, b.w) S16(b.w, c4.x)
    S16(c4.x, c4.y) S16(c4.y, c4.z) S16(c4.z, c4.w) S16(c4.w, d.x)
    S16(d.x, d.y) S16(d.y, d.z) S16(d.z, d.w)
#undef S16
    clen = lo4 + 1u;
    if (lo4 == 15u) { clen = 1u; return 0xFFFFFFFFu; }
    int idx4 = int(rev >> (15u - clen)) + int(sel & 0xFFFFu) - 32768;
    return s_syms[SLOT][syms_off + uint(idx4)];
#elif defined(DSD_SEARCH4)
#ifdef DSD_SEARCH4_REG
    uvec4 sm = t == T_LITLEN ? g_sum_lit : (t == T_DIST ? g_sum_dist : s_sum[SLOT][T_PRE]);
#else
    uvec4 sm = s_sum[SLOT][t];
#endif
    uint g = uint(sm.x <= rev) + uint(sm.y <= rev) + uint(sm.z <= rev);
    uvec4 w = s_grp[SLOT][t][g];
    uint key = (rev + 1u) << 16;  // w[j] < key exactly when lim[4g + j + 1] <= rev
    uint c = uint(w.x < key) + uint(w.y < key) + uint(w.z < key);
    uint lo4 = 4u * g + c;
    clen = lo4 + 1u;
    if (lo4 == 15u) { clen = 1u; return 0xFFFFFFFFu; }
    uint sel = c == 0u ? w.x : (c == 1u ? w.y : (c == 2u ? w.z : w.w));
    int idx4 = int(rev >> (15u - clen)) + int(sel & 0xFFFFu) - 32768;
    return s_syms[SLOT][syms_off + uint(idx4)];
#else
    uint lo = 0u;
    if (s_lim[SLOT][t][lo + 8u] <= rev) lo += 8u;
    if (s_lim[SLOT][t][lo + 4u] <= rev) lo += 4u;
    if (s_lim[SLOT][t][lo + 2u] <= rev) lo += 2u;
    if (s_lim[SLOT][t][lo + 1u] <= rev) lo += 1u;
    clen = lo + 1u;
    if (lo == 15u) { clen = 1u; return 0xFFFFFFFFu; }
    int idx = int(rev >> (15u - clen)) + s_base[SLOT][t][clen];
    return s_syms[SLOT][syms_off + uint(idx)];
#endif
}

// Every lane's error, made uniform: the lowest failing lane's code, or 0.
uint group_error() {
    uint m = lane_ballot(g_err != 0u);
    if (m == 0u) return 0u;
    return lane_read(g_err, findLSB(m));
}

// ---------------------------------------------------------------------------------------------
// Output: the tile's window is outb[g_ob, g_ob + g_osize).
#ifndef DSD_STATE_SHARED
uint g_ob;
uint g_osize;
#endif

// One match, copied by all 32 lanes. Bytes come from before `dest`, so none of them is written
// by this copy: an overlapping match repeats its period (k mod dist), like a forward byte copy.
void copy_match(uint dest, uint len, uint dist) {
#ifdef DSD_COOP_WORDS
    // Without self-overlap, lane j copies destination word j (and j + 32, ...), built from two
    // aligned source words; lanes 0..2 copy the bytes before the first word boundary, lanes 3..5
    // those after the last: a 258-byte match is 3 passes instead of 9.
    if (dist >= len && len >= 8u) {
        uint s = g_ob + dest - dist;
        uint d = g_ob + dest;
        uint head = (4u - (d & 3u)) & 3u;
        uint nb = (len - head) >> 2;
        uint tail = len - head - 4u * nb;
        uint sb = s + head;
        uint sh = (sb & 3u) * 8u;
        uint sw = sb >> 2;
        uint dw = (d + head) >> 2;
        for (uint j = LANE; j < nb; j += 32u) {
            uint a = outw[sw + j];
            uint b = outw[sw + j + 1u];
            outw[dw + j] = sh == 0u ? a : (a >> sh) | (b << (32u - sh));
        }
        if (LANE < head) {
            outb[d + LANE] = outb[s + LANE];
        } else if (LANE >= 3u && LANE - 3u < tail) {
            uint k = head + 4u * nb + LANE - 3u;
            outb[d + k] = outb[s + k];
        }
        return;
    }
#endif
    uint src = dest - dist;
    for (uint k = LANE; k < len; k += 32u) {
        uint from = dist >= len ? k : k % dist;
        outb[g_ob + dest + k] = outb[g_ob + src + from];
    }
}

#define NOTHING_FRESH 0xFFFFFFFFu
// Longest match one lane copies alone; longer ones are copied by all 32 lanes.
#ifndef SOLO_MAX_LEN
#define SOLO_MAX_LEN 64u
#endif
// A lone lane copies in groups of this many bytes (1: byte by byte).
#ifndef SOLO_GROUP
#define SOLO_GROUP 4
#endif

#ifdef DSD_SOLO_WORDS
#ifndef SOLO_WORD_GROUP
#define SOLO_WORD_GROUP 4
#endif
// One lane's copy of out[s, s + n) to out[d, d + n) with s + n <= d (no self-overlap): bytes up
// to d's word boundary, then whole destination words built from two aligned source words each,
// loaded SOLO_WORD_GROUP words at a time before their stores (so their latencies overlap), then
// the last bytes. Head and tail bytes are loaded first, alongside the first group.
void solo_copy_words(uint s, uint d, uint n) {
    uint head = min(n, (4u - (d & 3u)) & 3u);
    uint nb = (n - head) >> 2;
    uint tail = n - head - 4u * nb;
    uint ts = s + head + 4u * nb;
    uint hv[3];
    uint tv[3];
    for (uint j = 0u; j < 3u; j++) {
        hv[j] = j < head ? uint(outb[s + j]) : 0u;
        tv[j] = j < tail ? uint(outb[ts + j]) : 0u;
    }
    uint sb = s + head;
    uint sh = (sb & 3u) * 8u;
    uint sw = sb >> 2;
    uint dw = (d + head) >> 2;
    for (uint g = 0u; g < nb; g += uint(SOLO_WORD_GROUP)) {
        uint w[SOLO_WORD_GROUP + 1];
        for (uint j = 0u; j <= uint(SOLO_WORD_GROUP); j++) w[j] = g + j <= nb ? outw[sw + g + j] : 0u;
        for (uint j = 0u; j < uint(SOLO_WORD_GROUP); j++) {
            if (g + j < nb) outw[dw + g + j] = sh == 0u ? w[j] : (w[j] >> sh) | (w[j + 1u] << (32u - sh));
        }
    }
    for (uint j = 0u; j < 3u; j++) {
        if (j < head) outb[d + j] = uint8_t(hv[j]);
        if (j < tail) outb[d + head + 4u * nb + j] = uint8_t(tv[j]);
    }
}
#endif

// Copies, in lane order, the matches of the lanes in `mask` (destination, length, distance per
// lane). `fresh`: output bytes at or after it were written since the last sync_out (NOTHING_FRESH:
// none). A copy that reads such bytes syncs first; the others run back to back, so matches with
// distant sources (the common case) cost no barrier. Returns the new `fresh`.
uint copy_matches(uint mask, uint dest, uint len, uint dist, uint fresh) {
    while (mask != 0u) {
        uint l = findLSB(mask);
        uint d = lane_read(dest, l);
        uint n = lane_read(len, l);
        uint r = lane_read(dist, l);
        if (min(d - r + n, d) > fresh) {  // last byte it reads is min(src + len, dest) - 1
            sync_out();
            fresh = NOTHING_FRESH;
        }
        copy_match(d, n, r);
        fresh = min(fresh, d);
        mask &= mask - 1u;
    }
    return fresh;
}

#ifdef DSD_FLAT_COPY
// The round's independent matches (`solos`: each reads only bytes before the round's first
// destination) copied as one flat run of bytes: byte b of the run (matches in lane order) goes
// to lane b mod 32, so every pass stores 32 bytes whatever the lengths, instead of each lane
// walking its own match while lanes with short ones idle. A pass finds the match owning each
// lane's byte from the OR of the matches' start bits in its 32-byte window; the matches'
// (dest, start, dist | len << 16) sit in shared memory by their rank among the solos.
// A self-overlapping match reads (k mod dist) of the bytes before it, all written before the round.
#ifndef FLAT_UNROLL
#define FLAT_UNROLL 2
#endif
shared uint s_fdest[SLOTS][32];
shared uint s_fstart[SLOTS][32];
shared uint s_fdl[SLOTS][32];
void flat_copy(bool solo, uint solos, uint dest, uint len, uint dist) {
    uint flen = solo ? len : 0u;
    uint start = lane_prefix(flen);
    uint total = lane_sum(flen);
    sync_shared();  // the previous round's readers are done
    if (solo) {
        uint r = bitCount(solos & ((1u << LANE) - 1u));
        s_fdest[SLOT][r] = dest;
        s_fstart[SLOT][r] = start;
        s_fdl[SLOT][r] = dist | (len << 16);
    }
    sync_shared();
    uint before = 0u;  // solos starting before this pass's window
    // FLAT_UNROLL windows of 32 bytes per pass: their loads are all in flight before the stores.
    for (uint base = 0u; base < total; base += 32u * uint(FLAT_UNROLL)) {
        uint v[FLAT_UNROLL];
        uint at[FLAT_UNROLL];
        for (uint u = 0u; u < uint(FLAT_UNROLL); u++) {
            uint wb = base + 32u * u;
            uint m = lane_or(solo && start >= wb && start - wb < 32u ? 1u << (start - wb) : 0u);
            uint r = before + bitCount(m & ((2u << LANE) - 1u)) - 1u;  // rank of my byte's match
            before += bitCount(m);
            uint b = wb + LANE;
            at[u] = 0xFFFFFFFFu;
            v[u] = 0u;
            if (b < total) {
                uint d = s_fdest[SLOT][r];
                uint k = b - s_fstart[SLOT][r];
                uint dl = s_fdl[SLOT][r];
                uint r0 = dl & 0xFFFFu;
                uint from = r0 >= (dl >> 16) ? k : k % r0;
                at[u] = g_ob + d + k;
                v[u] = uint(outb[g_ob + d - r0 + from]);
            }
        }
        for (uint u = 0u; u < uint(FLAT_UNROLL); u++) {
            if (at[u] != 0xFFFFFFFFu) outb[at[u]] = uint8_t(v[u]);
        }
    }
}
#endif

// The copies of one round, in lane order. Short matches (unless DSD_NO_PARCOPY) whose source ends
// before the round's first destination (so no other copy of the round writes it) are copied by
// their own lane, all at once; the rest go one by one through copy_matches.
uint copy_round(bool copy, uint dest, uint len, uint dist, uint fresh) {
    uint mask = lane_ballot(copy);
#ifdef ABL_NOCOPY
    return fresh;
#endif
#ifndef DSD_NO_PARCOPY
    if (mask != 0u) {
        uint lead = findLSB(mask);
        uint first = lane_read(dest, lead);
        uint src_end = min(dest - dist + len, dest);
#ifndef DSD_SOLO_NEAREST
        // Alone if the source ends before the round's first copy (or it is that first copy).
        bool solo = copy && len <= SOLO_MAX_LEN && (src_end <= first || LANE == lead);
#else
        // Experimental (H200: 35 instead of 62 GB/s, docs/benchmarks.md):
        // alone if the source misses every earlier copy of this round. Copy ranges are disjoint
        // and ordered by lane, so only the nearest earlier one starting before src_end can hit:
        // find it by a binary search over the lanes.
        uint lastc = lane_max_incl(copy ? LANE + 1u : 0u);  // 1 + last copy lane <= me, 0: none
        uint key = lastc == 0u ? 0u : lane_read(dest, lastc - 1u);
        uint kend = lastc == 0u ? 0u : lane_read(dest + len, lastc - 1u);
        uint at = 0u;
        for (uint step = 16u; step != 0u; step >>= 1) {
            uint k = lane_read(key, at + step);
            if (k < src_end) at += step;
        }
        uint hit_key = lane_read(key, at);
        uint hit_end = lane_read(kend, at);
        bool clash = hit_key < src_end && hit_end > dest - dist;
        bool solo = copy && len <= SOLO_MAX_LEN && !clash;
#endif
#ifdef DSD_SOLO_NO_OVERLAP
        // A match that overlaps itself (dist < len) is a load -> store chain byte by byte for
        // one lane; copied by all lanes it is one pass of the (k mod dist) pattern.
        solo = solo && dist >= len;
#endif
        uint solos = lane_ballot(solo);
        if (lane_ballot(solo && src_end > fresh) != 0u) {
            sync_out();
            fresh = NOTHING_FRESH;
        }
#ifdef DSD_FLAT_COPY
        if (solos != 0u) flat_copy(solo, solos, dest, len, dist);  // uniform
#else
#ifdef DSD_SOLO_WORDS
        if (solo && dist >= len) {
            solo_copy_words(g_ob + dest - dist, g_ob + dest, len);
        } else
#endif
        if (solo) {
            uint src = g_ob + dest - dist;
            uint dst = g_ob + dest;
            uint k = 0u;
#if SOLO_GROUP > 1
            // Groups of SOLO_GROUP loads, then their stores: with dist >= SOLO_GROUP every byte a
            // group reads is already written, and the loads of a group overlap in flight
            // (H200: +4% on the conformance mix, +1% on the game corpus against byte by byte).
            if (dist >= uint(SOLO_GROUP)) {
                for (; k + uint(SOLO_GROUP) <= len; k += uint(SOLO_GROUP)) {
                    uint v[SOLO_GROUP];
                    for (uint j = 0u; j < uint(SOLO_GROUP); j++) v[j] = uint(outb[src + k + j]);
                    for (uint j = 0u; j < uint(SOLO_GROUP); j++) outb[dst + k + j] = uint8_t(v[j]);
                }
            }
#endif
            for (; k < len; k++) outb[dst + k] = outb[src + k];
        }
#endif
        if (solos != 0u) fresh = min(fresh, first);
        mask &= ~solos;
    }
#endif
    return copy_matches(mask, dest, len, dist, fresh);
}

// A decoded symbol's value: the distance (pend) or the length, with its extra bits, or a literal.
#ifdef DSD_ONE_EXTRA
// A/B (not yet measured): bases in closed form instead of table lookups, and one take() for
// distances and lengths, so the lanes with and without a pending length share one path.
void value_base(bool pend, uint sym, out uint base, out uint nextra) {
    if (pend) {
        nextra = sym < 4u ? 0u : (sym >> 1) - 1u;
        base = sym < 4u ? sym + 1u : ((2u + (sym & 1u)) << nextra) + 1u;
    } else {
        uint i = sym - 257u;  // GDeflate's 285 is 3 + 16 extra bits
        nextra = sym <= 256u || i < 8u ? 0u : (i == 28u ? 16u : (i >> 2) - 1u);
        base = sym <= 256u ? 0u : (i < 8u ? 3u + i : (i == 28u ? 3u : ((4u + (i & 3u)) << nextra) + 3u));
    }
}
#define ROUND_VALUE(pend, sym, pend_dest, len, dist, contrib) { \
    uint vb; uint vn; \
    value_base(pend, sym, vb, vn); \
    uint v = vb + take(vn); \
    if (pend) { dist = v; if (dist > pend_dest) { fail(E_DISTANCE); dist = 0u; } } \
    else if (sym < 256u) contrib = 1u; \
    else if (sym > 256u) { len = v; contrib = len; } }
#else
#define ROUND_VALUE(pend, sym, pend_dest, len, dist, contrib) { \
    if (pend) { \
        uint extra = sym < 4u ? 0u : (sym >> 1) - 1u; \
        dist = DIST_BASE[sym] + take(extra); \
        if (dist > pend_dest) { fail(E_DISTANCE); dist = 0u; } \
    } else if (sym < 256u) { \
        contrib = 1u; \
    } else if (sym > 256u) { \
        len = LEN_BASE[sym - 257u] + take(LEN_EXTRA[sym - 257u]); \
        contrib = len; \
    } }
#endif

#ifdef DSD_ONE_VALUE
// The three value paths (distance, literal, length) as one: one table load chosen per lane,
// the extra bits read from the round's peeked bits above the code, and one consume for code and
// extra bits (clen + extra <= 31, and the consume check fails exactly when the two separate ones
// would), so the lanes with and without a pending length issue the same instructions.
#define ROUND_VALUE1(pend, sym, bits, clen, pend_dest, len, dist, contrib) { \
    uint ve = VALUE_TAB[pend ? 30u + sym : (sym > 256u ? sym - 257u : 29u)]; \
    uint vn = ve >> 16; \
    uint v = (ve & 0xFFFFu) + ((bits >> clen) & ((1u << vn) - 1u)); \
    consume(clen + vn); \
    if (pend) { dist = v; if (dist > pend_dest) { fail(E_DISTANCE); dist = 0u; } } \
    else if (sym < 256u) contrib = 1u; \
    else if (sym > 256u) { len = v; contrib = len; } }
#endif

// A round's symbol: a distance for the lanes with a pending length, else a literal/length.
// One table walk with the table chosen per lane: two walks specialised per table are two
// divergent paths that the lanes with and without a pending length take one after the other
// (each 5 dependent shared loads). H200, run 17: +5% on both batches (62.6 -> 65.9 GB/s on the
// game corpus). On in the wave32 builds; DSD_TWO_DECODES restores the two walks (A/B),
// DSD_ONE_DECODE turns it on in the shared-memory build.
#if (defined(DSD_WAVE32) && !defined(DSD_TWO_DECODES)) || defined(DSD_ONE_DECODE)
#define DECODE_ROUND_SYM(pend, bits, clen, sym) \
    sym = decode_sym(pend ? T_DIST : T_LITLEN, pend ? SYMS_DIST : SYMS_LITLEN, bits, clen)
#else
#define DECODE_ROUND_SYM(pend, bits, clen, sym) \
    if (pend) sym = decode_sym(T_DIST, SYMS_DIST, bits, clen); \
    else sym = decode_sym(T_LITLEN, SYMS_LITLEN, bits, clen)
#endif

// Decodes a distance (code + extra bits) for a lane whose match starts at `dest`.
uint decode_distance(uint dest) {
    uint bits = peek32();
    uint clen;
    uint sym = decode_sym(T_DIST, SYMS_DIST, bits, clen);
    if (sym == 0xFFFFFFFFu) { fail(E_BAD_SYMBOL); return 1u; }
    uint extra = sym < 4u ? 0u : (sym >> 1) - 1u;
    consume(clen);
    uint dist = DIST_BASE[sym] + take(extra);
    if (dist > dest) { fail(E_DISTANCE); return 1u; }
    return dist;
}

// ---------------------------------------------------------------------------------------------
// Block bodies. Each returns the group error (uniform), 0 when fine.
uint g_out;    // output position within the tile, same in every lane
uint g_steps;  // rounds spent on this tile, same in every lane

uint stored_block() {
    uint n = lane_read(LANE == 0u ? take(16u) : 0u, 0u);
    if (g_out + n > g_osize) return E_OUTPUT_OVERFLOW;
    for (uint k = 0u; k < n; k += 32u) {
        if (++g_steps > pc.step_budget) return E_BUDGET;
        bool act = k + LANE < n;
        if (act) outb[g_ob + g_out + k + LANE] = uint8_t(take(8u));
        refill(act);
        if (g_rp > (g_te - g_tb) / 4u + OVERREAD_WORDS) return E_OVERREAD;
    }
    refill(true);  // end-of-block sweep: only lane 0 after LEN = 0 can need a word
    g_out += n;
    return group_error();
}

// Reads the dynamic header and builds the three tables.
uint dynamic_header() {
    uint hdr = lane_read(LANE == 0u ? take(14u) : 0u, 0u);
    uint hlit = (hdr & 31u) + 257u;
    uint hdist = ((hdr >> 5) & 31u) + 1u;
    uint hclen = (hdr >> 10) + 4u;
    refill(LANE == 0u);
    uint pre = LANE < hclen ? take(3u) : 0u;
    if (LANE < 19u) s_lens[SLOT][PRECODE_ORDER[LANE]] = pre;
    refill(LANE < hclen);
    sync_shared();
    if (!build_table(T_PRE, 19u, SYMS_PRE)) return E_BAD_CODE_LENGTHS;

    uint total = hlit + hdist;
    uint filled = 0u;
    uint last = 0xFFFFFFFFu;  // previous length value, for repeat code 16
    while (filled < total) {
        if (++g_steps > pc.step_budget) return E_BUDGET;
        uint bits = peek32();
        uint clen;
        uint sym = decode_sym(T_PRE, SYMS_PRE, bits, clen);
        bool bad = sym == 0xFFFFFFFFu;
        uint nextra = sym == 16u ? 2u : (sym == 17u ? 3u : (sym == 18u ? 7u : 0u));
        uint ex = (bits >> clen) & ((1u << nextra) - 1u);
        uint run = bad ? 1u : (sym == 16u ? 3u + ex : (sym == 17u ? 3u + ex : (sym == 18u ? 11u + ex : 1u)));
        uint start = filled + lane_prefix(run);
        uint round_total = lane_sum(run);
        bool act = start < total;
        if (act) {
            if (bad) fail(E_BAD_CODE_LENGTHS);
            consume(bad ? 0u : clen + nextra);
        }
        // Resolve repeat-16 values from the nearest earlier item (this round or the last one).
        s_val[SLOT][LANE] = (sym == 16u) ? 0xFFFFFFFFu : (sym < 16u ? sym : 0u);
        sync_shared();
        uint val = s_val[SLOT][LANE];
        if (sym == 16u && act) {
            val = last;
            for (int i = int(LANE) - 1; i >= 0; i--) {
                if (s_val[SLOT][i] != 0xFFFFFFFFu) { val = s_val[SLOT][i]; break; }
            }
            if (val == 0xFFFFFFFFu) { fail(E_BAD_CODE_LENGTHS); val = 0u; }
        }
        if (act) {
            uint stop = min(start + run, total);
            for (uint i = start; i < stop; i++) s_lens[SLOT][i] = val;
        }
        uint last_lane = findMSB(lane_ballot(act));
        last = lane_read(val, last_lane);
        refill(act);
        filled = min(filled + round_total, total);
        uint e = group_error();
        if (e != 0u) return e;
        sync_shared();
    }
    sync_shared();
    // Distance lengths move to the front for their own table; litlen lengths stay at 0..hlit.
    // Build the distance table first from a copy, then the litlen table in place.
    uint dl = LANE < hdist ? s_lens[SLOT][hlit + LANE] : 0u;
    sync_shared();
    if (!build_table(T_LITLEN, hlit, SYMS_LITLEN)) return E_BAD_CODE_LENGTHS;
    if (LANE < 32u) s_lens[SLOT][LANE] = LANE < hdist ? dl : 0u;
    sync_shared();
    if (!build_table(T_DIST, hdist, SYMS_DIST)) return E_BAD_CODE_LENGTHS;
    return 0u;
}

#ifdef DSD_FIXED_BY_BUILD
void fixed_lengths() {
    for (uint i = LANE; i < 288u; i += 32u) {
        s_lens[SLOT][i] = i < 144u ? 8u : (i < 256u ? 9u : (i < 280u ? 7u : 8u));
    }
    sync_shared();
}
#else
// The fixed codes' tables in closed form, the same as build_table makes from their lengths
// (litlen: 0-143 8 bits, 144-255 9, 256-279 7, 280-287 8; distance: 32 x 5 bits): no walk over
// the lengths, so a fixed block starts in about a microsecond (a small tile's fixed cost).
void fixed_table(uint t, uint syms_off) {
    uint L = LANE;
    uint cnt = t == T_LITLEN ? (L == 7u ? 24u : (L == 8u ? 152u : (L == 9u ? 112u : 0u))) : (L == 5u ? 32u : 0u);
    if (L < 16u) s_cnt[SLOT][L] = cnt;
    sync_shared();
    if (L >= 1u && L <= 15u) {
        uint code = 0u;
        uint off = 0u;
        for (uint j = 1u; j < L; j++) {
            code = (code + s_cnt[SLOT][j]) << 1;
            off += s_cnt[SLOT][j];
        }
        s_lim[SLOT][t][L] = (code + cnt) << (15u - L);
        s_base[SLOT][t][L] = int(off) - int(code);
    }
    if (L == 0u) s_lim[SLOT][t][0] = 0u;
    // Symbols sorted by (length, value): litlen 256-279 (7 bits), 0-143 and 280-287 (8), 144-255 (9).
    uint n = t == T_LITLEN ? 288u : 32u;
    for (uint i = LANE; i < n; i += 32u) {
        uint sym = t != T_LITLEN ? i : (i < 24u ? 256u + i : (i < 168u ? i - 24u : (i < 176u ? 280u + i - 168u : i - 32u)));
        s_syms[SLOT][syms_off + i] = sym;
    }
    sync_shared();
#ifdef DSD_SEARCH4
    search4_pack(t);
#endif
}
#endif

#ifdef DSD_ONE_COPY_SITE
// Literal/length/distance rounds of one compressed block (format doc §2.6). A/B build: the
// end-of-block sweep (distances of the EOB round's lengths) is one more pass of the round loop
// in `sweep` mode, so the round's code (decode, refill, copies) is compiled once, not twice.
uint huffman_block() {
    uint fresh = 0u;  // unknown: a stored block may just have written bytes; the first reader syncs
    bool pend = false;
    uint pend_dest = 0u;
    uint pend_len = 0u;
    uint es = 32u;  // < 32: this pass is the sweep after the round whose EOB lane was es
    for (;;) {
        bool sweep = es < 32u;
        if (!sweep && ++g_steps > pc.step_budget) return E_BUDGET;
        uint bits = peek32();
        uint clen;
        uint sym;
        DECODE_ROUND_SYM(pend, bits, clen, sym);
        bool is_eob = !sweep && !pend && sym == 256u;
        uint eobm = lane_ballot(is_eob);
        uint E = eobm != 0u ? findLSB(eobm) : 32u;
        // Lanes after the EOB lane only finish a pending distance (it belongs to the sweep); in the
        // sweep only the lanes with a pending distance take part.
        bool act = sweep ? pend : (LANE <= E || pend);
        bool bad = sym == 0xFFFFFFFFu || (!pend && sym > 285u);
        uint len = 0u;
        uint dist = 0u;
        uint contrib = 0u;
        if (act && bad) fail(E_BAD_SYMBOL);
        if (act && !bad) {
            consume(clen);
            ROUND_VALUE(pend, sym, pend_dest, len, dist, contrib);
        }
        uint pos = g_out + lane_prefix(contrib);
        uint produced = lane_sum(contrib);
        if (g_out + produced > g_osize) return E_OUTPUT_OVERFLOW;
        if (contrib == 1u && len == 0u) outb[g_ob + pos] = uint8_t(sym);
        if (produced != 0u) fresh = min(fresh, g_out);  // this round's literals
        // EOB round: the lanes up to the EOB lane, then the lanes after it; sweep: the lanes
        // before the EOB lane; otherwise every lane (the second call is then empty).
        refill(sweep ? LANE < es : LANE < E);
        refill(!sweep && LANE >= E);
        g_out += produced;
        uint e = group_error();
        if (e != 0u) return e;
        if (g_rp > (g_te - g_tb) / 4u + OVERREAD_WORDS) return E_OVERREAD;
        bool copy = act && pend && dist != 0u;
        fresh = copy_round(copy, pend_dest, pend_len, dist, fresh);
        if (sweep) {
            sync_out();  // the next block's first copies may read anything written here
            return 0u;
        }
        if (act && pend) pend = false;
        if (len != 0u) { pend = true; pend_dest = pos; pend_len = len; }
        es = E;
    }
    return 0u;
}
#else
#ifdef DSD_CHECK_EVERY
// A/B: the error ballot and the overread check run once every DSD_CHECK_EVERY rounds (a power of
// two) instead of every round. Memory stays bounded without them: a failing lane writes nothing
// bad (fail() zeroes a bad distance, a bad symbol takes no value), load_word reads zero past the
// tile, g_rp grows at most 32 words a round, and the output and step-budget checks stay per round.
// When one of those fires, an error recorded in the rounds not yet checked wins, in the order of
// the per-round checks, so a bad stream reports the code it would have.
uint late_error(uint code) {
    uint e = group_error();
    if (e != 0u) return e;
    if (g_rp > (g_te - g_tb) / 4u + OVERREAD_WORDS) return E_OVERREAD;
    return code;
}
#define ROUND_BUDGET_ERROR late_error(E_BUDGET)
#define ROUND_OVERFLOW_ERROR late_error(E_OUTPUT_OVERFLOW)
#else
#define ROUND_BUDGET_ERROR E_BUDGET
#define ROUND_OVERFLOW_ERROR E_OUTPUT_OVERFLOW
#endif

// Literal/length/distance rounds of one compressed block (format doc §2.6).
uint huffman_block() {
    uint fresh = 0u;  // unknown: a stored block may just have written bytes; the first reader syncs
    bool pend = false;
    uint pend_dest = 0u;
    uint pend_len = 0u;
    for (;;) {
        if (++g_steps > pc.step_budget) return ROUND_BUDGET_ERROR;
        uint bits = peek32();
        uint clen;
        uint sym;
        DECODE_ROUND_SYM(pend, bits, clen, sym);
        bool is_eob = !pend && sym == 256u;
        uint eobm = lane_ballot(is_eob);
        uint E = eobm != 0u ? findLSB(eobm) : 32u;
        // Lanes after the EOB lane only finish a pending distance (it belongs to the sweep).
        bool act = LANE <= E || pend;
        bool bad = sym == 0xFFFFFFFFu || (!pend && sym > 285u);
        uint len = 0u;
        uint dist = 0u;
        uint contrib = 0u;
        if (act && bad) fail(E_BAD_SYMBOL);
        if (act && !bad) {
#ifdef DSD_ONE_VALUE
            ROUND_VALUE1(pend, sym, bits, clen, pend_dest, len, dist, contrib);
#else
            consume(clen);
            ROUND_VALUE(pend, sym, pend_dest, len, dist, contrib);
#endif
        }
#ifdef DSD_SCAN_ONCE
        // One scan for both the lane's position and the round's total (the last lane's
        // inclusive sum, one broadcast) instead of a scan and a reduction.
        uint incl = lane_incl(contrib);
        uint pos = g_out + incl - contrib;
        uint produced = lane_last(incl);
#else
        uint pos = g_out + lane_prefix(contrib);
        uint produced = lane_sum(contrib);
#endif
        if (g_out + produced > g_osize) return ROUND_OVERFLOW_ERROR;
#ifndef ABL_NOLIT
        if (contrib == 1u && len == 0u) outb[g_ob + pos] = uint8_t(sym);
#endif
        if (produced != 0u) fresh = min(fresh, g_out);  // this round's literals
        if (E < 32u) {
            refill(LANE < E);
            refill(LANE >= E);  // sweep, part 1: the EOB lane first, then the lanes after it
        } else {
            refill(true);
        }
        g_out += produced;
#ifdef DSD_REFILL_AHEAD
        read_ahead();
#endif
#ifdef DSD_CHECK_EVERY
        // The EOB round always checks: the sweep below ends the block.
        uint e = 0u;
        if (E < 32u || (g_steps & (DSD_CHECK_EVERY - 1u)) == 0u) {
            e = late_error(0u);
            if (e != 0u) return e;
        }
#else
        uint e = group_error();
        if (e != 0u) return e;
        if (g_rp > (g_te - g_tb) / 4u + OVERREAD_WORDS) return E_OVERREAD;
#endif
        bool copy = act && pend && dist != 0u;
        fresh = copy_round(copy, pend_dest, pend_len, dist, fresh);
        if (act && pend) pend = false;
        if (len != 0u) { pend = true; pend_dest = pos; pend_len = len; }
        if (E < 32u) {
            // Sweep, part 2: lanes before the EOB lane hold distances for this round's lengths.
            bool fin = pend;
            uint d2 = 0u;
            if (fin) d2 = decode_distance(pend_dest);
            refill(LANE < E);
            e = group_error();
            if (e != 0u) return e;
            copy_round(fin, pend_dest, pend_len, d2, fresh);
            sync_out();  // the next block's first copies may read anything written here
            return 0u;
        }
    }
    return 0u;
}
#endif

// ---------------------------------------------------------------------------------------------
uint decode_tile() {
    g_err = 0u;
    g_steps = 0u;
    g_out = 0u;
    g_rp = 32u;
    g_buf = uint64_t(load_word(LANE));
    g_avail = 32u;
#ifdef DSD_REFILL_AHEAD
    read_ahead();
#endif
    bool fixed_ready = false;
    for (;;) {
        if (++g_steps > pc.step_budget) return E_BUDGET;
        uint hdr = lane_read(LANE == 0u ? take(3u) : 0u, 0u);
        refill(LANE == 0u);
        uint btype = hdr >> 1;
        uint e = 0u;
        if (btype == 0u) {
            e = stored_block();
        } else if (btype == 1u) {
            if (!fixed_ready) {
#ifdef DSD_FIXED_BY_BUILD
                fixed_lengths();
                if (!build_table(T_LITLEN, 288u, SYMS_LITLEN)) return E_BAD_CODE_LENGTHS;
                if (LANE < 32u) s_lens[SLOT][LANE] = 5u;
                sync_shared();
                if (!build_table(T_DIST, 32u, SYMS_DIST)) return E_BAD_CODE_LENGTHS;
#else
                fixed_table(T_LITLEN, SYMS_LITLEN);
                fixed_table(T_DIST, SYMS_DIST);
#ifdef DSD_LUT
                lut_fill(T_LITLEN, SYMS_LITLEN);
                lut_fill(T_DIST, SYMS_DIST);
#endif
#endif
                fixed_ready = true;
            }
            e = huffman_block();
        } else if (btype == 2u) {
            fixed_ready = false;
            e = dynamic_header();
            if (e == 0u) e = huffman_block();
        } else {
            e = E_BLOCK_TYPE;
        }
        if (e != 0u) return e;
        if (g_rp > (g_te - g_tb) / 4u + OVERREAD_WORDS) return E_OVERREAD;
        if ((hdr & 1u) != 0u) break;
    }
    if (g_out != g_osize) return E_OUTPUT_SHORT;
    return 0u;
}

// Finds the stream holding batch tile `g` (streams are sorted by tile_base).
uint find_stream(uint g) {
    uint lo = 0u;
    uint hi = pc.num_streams;
    while (hi - lo > 1u) {
        uint mid = (lo + hi) / 2u;
        if (streams[mid].tile_base <= g) lo = mid; else hi = mid;
    }
    return lo;
}

void main() {
    for (uint iter = 0u;; iter++) {
        // Persistent groups take tiles from the counter; otherwise one tile per workgroup.
        uint g;
        if ((pc.persistent & PERSISTENT) != 0u) {
            g = lane_read(LANE == 0u ? atomicAdd(ctl[0], 1u) : 0u, 0u);
        } else {
            if (iter != 0u) break;
            g = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * SLOTS + SLOT;
        }
        if (g >= pc.total_tiles) break;
#ifdef DSD_TILE_CLOCK
        uint clock_slot = g;  // the record is kept by hand-out position
        uvec2 t_start = clockRealtime2x32EXT();
#endif
        if ((pc.persistent & TILE_ORDER) != 0u) g = swords[pc.num_streams * 8u + g];
        uint s = find_stream(g);
        Stream st = streams[s];
        uint i = g - st.tile_base;
        // Tile table (format doc §1): entry 0 is the last tile's size, entry i > 0 tile i's offset.
        uint table = st.in_off / 4u + 2u;
        uint data = 8u + 4u * st.num_tiles;
        uint start = i == 0u ? 0u : words[table + i];
        uint end = i + 1u == st.num_tiles ? start + words[table] : words[table + i + 1u];
        uint avail = st.in_len - data;
        uint code = 0u;
        if (end < start || end > avail || (i + 1u == st.num_tiles && words[table] > avail)) {
            code = E_TILE_RANGE;
        } else {
#ifdef DSD_STATE_SHARED
            sync_shared();  // the previous tile's readers are done
            if (LANE == 0u) {
#endif
            g_tb = st.in_off + data + start;
            g_te = st.in_off + data + end;
            g_ob = st.out_off + i * TILE_BYTES;
            g_osize = i + 1u == st.num_tiles ? st.last_size : TILE_BYTES;
#ifdef DSD_STATE_SHARED
            }
            sync_shared();
#endif
            code = decode_tile();
        }
        if (code != 0u && LANE == 0u) {
            atomicCompSwap(sts[1u + s], 0u, code | (i << 16));
            atomicAdd(sts[0], 1u);  // the host reads the status words only when this is not zero
        }
#ifdef DSD_TILE_CLOCK
        uvec2 t_end = clockRealtime2x32EXT();
        if (LANE == 0u) {
            uint at = 1u + pc.num_streams + 4u * clock_slot;
            sts[at] = g;
            sts[at + 1u] = t_start.x;
            sts[at + 2u] = t_end.x;
            sts[at + 3u] = (gl_WorkGroupID.x * SLOTS + SLOT) | (g_steps << 16);
        }
#endif
    }
}
