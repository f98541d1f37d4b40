/*
 * GDeflate decoder: tile-stream container + 32-lane tile bitstream.
 *
 * Design (see docs/codec.md):
 *   - The container header and the whole tile table are validated against in_len before any tile
 *     is touched; every tile must decode to exactly its declared size.
 *   - Each lane keeps a 64-bit bit buffer and a count; a refill check appends one 32-bit word from
 *     the shared tile pointer when a lane holds fewer than 32 bits. Refill checks happen only at
 *     the points the format fixes, so the word order matches the encoder's schedule.
 *   - Sequential shortcut: a match's distance sits right behind its length on the same lane, so
 *     it is decoded and copied at once; the lane's post-distance refill check is deferred to the
 *     lane's next turn (the only thing that matters is the order of refills).
 *   - Huffman decoding is table driven (root table + subtables, libdeflate-style entries).
 *   - Rounds: every lane gets exactly one refill check per pass over lanes 0..31, in lane order,
 *     so a lane's word is `base + 4 * (refilling lanes below it)`. The symbol loop runs whole
 *     rounds: in vectors of lanes (AVX-512 or AVX2 builds, picked at run time) or over the active
 *     lanes only (scalar); near a tile's end, the step-by-step loop finishes the block.
 *   - Reads never pass the tile's end: missing words read as zero, and a tile that needs more than
 *     GD_MAX_PHANTOM_WORDS of them is corrupt (this also bounds loops over empty stored blocks).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gdeflate.h"
#include "gdeflate_internal.h"

/* One validation path: every check on untrusted data goes through here. */
#define SAFETY_CHECK(cond, why)                                                                                  \
    do {                                                                                                         \
        if (GD_UNLIKELY(!(cond))) {                                                                              \
            *reason = (why);                                                                                     \
            return GDEFLATE_BAD_DATA;                                                                            \
        }                                                                                                        \
    } while (0)

#define LITLEN_TABLEBITS 10u
#define DIST_TABLEBITS 8u
#define PRECODE_TABLEBITS 7u
/* Table capacities. zlib's `enough` gives the worst cases for these root sizes as 1334 (288
 * symbols, 10 bits, max 15), 402 (32, 8, 15) and 128 (19, 7, 7); the first two are rounded up for
 * margin (unused entries are never touched), and the builder checks every subtable against them,
 * so a miscount could only reject a stream, never overrun. */
#define LITLEN_ENOUGH 1536u
#define DIST_ENOUGH 512u
#define PRECODE_ENOUGH 128u

#define GD_MAX_PHANTOM_WORDS 64u

/* Decode table entry: bits 0-7 codeword length (root bits for a subtable pointer), 8-12 extra
 * bits (subtable bits for a pointer), flags, and a 16-bit value in bits 16-31. */
#define E_LITERAL 0x8000u
#define E_EXCEPTIONAL 0x4000u /* end of block, subtable pointer or invalid symbol */
#define E_SUBTABLE 0x2000u
#define E_EOB 0x1000u
#define E_INVALID 0x0800u

struct gdeflate_decompressor {
    uint32_t litlen[LITLEN_ENOUGH];
    uint32_t dist[DIST_ENOUGH];
    uint32_t precode[PRECODE_ENOUGH];
    uint32_t fixed_litlen[LITLEN_ENOUGH]; /* built on the first fixed block (most tiles have none) */
    uint32_t fixed_dist[DIST_ENOUGH];
    int fixed_ready;
    uint32_t litlen_results[GD_NUM_LITLEN_SYMS];
    uint32_t dist_results[GD_NUM_DIST_SYMS];
    uint32_t precode_results[GD_NUM_PRECODE_SYMS];
    /* code lengths; room for a final repeat run that overshoots HLIT+HDIST */
    uint8_t lens[GD_NUM_LITLEN_SYMS + GD_NUM_DIST_SYMS + 140];
};

const char *gdeflate_result_string(enum gdeflate_result r)
{
    switch (r) {
    case GDEFLATE_SUCCESS: return "success";
    case GDEFLATE_BAD_DATA: return "corrupt or unsupported GDeflate data";
    case GDEFLATE_SHORT_OUTPUT: return "tile decoded to fewer bytes than declared";
    case GDEFLATE_INSUFFICIENT_SPACE: return "output buffer too small";
    case GDEFLATE_NO_MEMORY: return "out of memory";
    case GDEFLATE_BAD_ARGUMENT: return "invalid argument";
    }
    return "unknown result";
}

/* ------------------------------------------------------------------ Huffman decode tables */

/* The canonical successor of a `len`-bit codeword held bit-reversed: add one at bit len-1 and
 * carry downwards, i.e. set the highest clear bit below len and clear the bits above it. Branch
 * free (a loop here mispredicted on most symbols); the last codeword (all ones) has no successor
 * and gets an unused value. */
static inline unsigned next_reversed(unsigned code, unsigned len)
{
    unsigned clear = (~code & ((1u << len) - 1)) | 1u;
    unsigned bit = 1u << (31 - __builtin_clz(clear));
    return (code & (bit - 1)) | bit;
}

/*
 * Build a decode table from canonical code lengths. Follows libdeflate 1.8's acceptance rules:
 * an over-subscribed code is rejected; an incomplete code is rejected except the empty code
 * (every symbol decodes as symbol 0, length 1) and a single codeword of length 1 (both 1-bit
 * patterns decode to it).
 */
static int build_table(uint32_t *table, unsigned capacity, const uint8_t *lens, unsigned num_syms,
                       const uint32_t *results, unsigned table_bits, unsigned max_len)
{
    /*
     * Count the lengths and sort the symbols by (length, symbol). Both touch one counter per
     * symbol, and runs of equal lengths would chain those updates through memory; the alphabet
     * is cut in four quarters, walked interleaved, each with its own counters: four independent
     * chains. Unused symbols (length 0) are sorted after the used ones. Lengths are at most
     * GD_MAX_CODEWORD_LEN (4-bit values from the precode).
     */
    enum { QUARTERS = 4 };
    unsigned qcount[QUARTERS][GD_MAX_CODEWORD_LEN + 1], qnext[QUARTERS][GD_MAX_CODEWORD_LEN + 1];
    unsigned count[GD_MAX_CODEWORD_LEN + 1];
    uint16_t sorted[GD_NUM_LITLEN_SYMS];
    unsigned qlen = (num_syms + QUARTERS - 1) / QUARTERS;

    memset(qcount, 0, sizeof(qcount));
    for (unsigned i = 0; i < qlen; i++)
        for (unsigned q = 0; q < QUARTERS; q++)
            if (q * qlen + i < num_syms) qcount[q][lens[q * qlen + i]]++;
    for (unsigned l = 0; l <= GD_MAX_CODEWORD_LEN; l++)
        count[l] = qcount[0][l] + qcount[1][l] + qcount[2][l] + qcount[3][l];
    uint32_t used = 0;
    for (unsigned l = 1; l <= max_len; l++) used += (uint32_t)count[l] << (max_len - l);
    if (used > (1u << max_len)) return 0; /* over-subscribed */

    unsigned pos = 0;
    for (unsigned l = 1; l <= GD_MAX_CODEWORD_LEN + 1; l++) {
        unsigned len_or_unused = l <= GD_MAX_CODEWORD_LEN ? l : 0;
        for (unsigned q = 0; q < QUARTERS; q++) {
            qnext[q][len_or_unused] = pos;
            pos += qcount[q][len_or_unused];
        }
    }
    for (unsigned i = 0; i < qlen; i++)
        for (unsigned q = 0; q < QUARTERS; q++) {
            unsigned sym = q * qlen + i;
            if (sym < num_syms) sorted[qnext[q][lens[sym]]++] = (uint16_t)sym;
        }

    if (used < (1u << max_len)) {
        uint32_t entry;
        if (used == 0) {
            entry = results[0] | 1u;
        } else {
            if (used != (1u << (max_len - 1)) || count[1] != 1) return 0;
            entry = results[sorted[0]] | 1u;
        }
        for (unsigned i = 0; i < (1u << table_bits); i++) table[i] = entry;
        return 1;
    }

    /*
     * Complete code. Codewords are visited in canonical order with `code` held bit-reversed (the
     * order the decoder peeks bits), which stays the same value when the length grows by one.
     * Root part: while codewords of length len are placed only the first 2^len entries exist
     * (each stands for every index with the same low len bits); going to len + 1 doubles the
     * table by copying that half onto the next, so every entry is written once or by memcpy.
     */
    unsigned k = 0, code = 0, len = 1;
    for (; len <= table_bits; len++) { /* table_bits <= max_len for every table here */
        for (unsigned c = count[len]; c > 0; c--) {
            table[code] = results[sorted[k++]] | len;
            code = next_reversed(code, len);
        }
        if (len < table_bits) memcpy(table + (1u << len), table, sizeof(*table) << len);
    }
    /* Longer codewords: a pointer in the root entry of their first table_bits bits, and a
     * subtable just big enough for the codewords that share them. */
    unsigned remaining[GD_MAX_CODEWORD_LEN + 1];
    memcpy(remaining, count, sizeof(remaining));
    unsigned next_free = 1u << table_bits;
    unsigned cur_prefix = ~0u, sub_start = 0, sub_bits = 0;
    for (; len <= max_len; len++) {
        for (unsigned c = count[len]; c > 0; c--) {
            uint32_t entry = results[sorted[k++]];
            unsigned prefix = code & ((1u << table_bits) - 1);
            if (prefix != cur_prefix) {
                unsigned bits = len - table_bits;
                int left = 1 << bits;
                while (bits + table_bits < max_len) {
                    left -= (int)remaining[bits + table_bits];
                    if (left <= 0) break;
                    bits++;
                    left <<= 1;
                }
                if (next_free + (1u << bits) > capacity) return 0;
                sub_start = next_free;
                sub_bits = bits;
                next_free += 1u << bits;
                cur_prefix = prefix;
                table[prefix] = E_EXCEPTIONAL | E_SUBTABLE | (sub_start << 16) | (sub_bits << 8) | table_bits;
            }
            for (unsigned i = code >> table_bits; i < (1u << sub_bits); i += 1u << (len - table_bits))
                table[sub_start + i] = entry | len;
            remaining[len]--;
            code = next_reversed(code, len);
        }
    }
    return 1;
}

static void init_results(struct gdeflate_decompressor *d)
{
    for (unsigned s = 0; s < 256; s++) d->litlen_results[s] = E_LITERAL | (s << 16);
    d->litlen_results[GD_END_OF_BLOCK] = E_EXCEPTIONAL | E_EOB;
    for (unsigned s = GD_FIRST_LEN_SYM; s <= 285; s++)
        d->litlen_results[s] = ((uint32_t)gd_length_base[s - 257] << 16) | ((uint32_t)gd_length_extra[s - 257] << 8);
    /* 286/287 are undefined in GDeflate (the reference decoders disagree): reject them. */
    d->litlen_results[286] = E_EXCEPTIONAL | E_INVALID;
    d->litlen_results[287] = E_EXCEPTIONAL | E_INVALID;
    for (unsigned s = 0; s < GD_NUM_DIST_SYMS; s++)
        d->dist_results[s] = (gd_dist_base[s] << 16) | ((uint32_t)gd_dist_extra[s] << 8);
    for (unsigned s = 0; s < GD_NUM_PRECODE_SYMS; s++) d->precode_results[s] = s << 16;
}

struct gdeflate_decompressor *gdeflate_alloc_decompressor(void)
{
    struct gdeflate_decompressor *d = malloc(sizeof(*d));
    if (d == NULL) return NULL;
    d->fixed_ready = 0;
    init_results(d);
    return d;
}

/* The fixed-code tables, built once per decompressor when a fixed block first appears. */
static int ensure_fixed_tables(struct gdeflate_decompressor *d)
{
    if (d->fixed_ready) return 1;
    uint8_t litlen[GD_NUM_LITLEN_SYMS], dist[GD_NUM_DIST_SYMS];
    gd_fixed_lens(litlen, dist);
    d->fixed_ready = build_table(d->fixed_litlen, LITLEN_ENOUGH, litlen, GD_NUM_LITLEN_SYMS, d->litlen_results,
                                 LITLEN_TABLEBITS, GD_MAX_CODEWORD_LEN) &&
                     build_table(d->fixed_dist, DIST_ENOUGH, dist, GD_NUM_DIST_SYMS, d->dist_results,
                                 DIST_TABLEBITS, GD_MAX_CODEWORD_LEN);
    return d->fixed_ready; /* always 1: the fixed codes are complete */
}

void gdeflate_free_decompressor(struct gdeflate_decompressor *d)
{
    free(d);
}

/* ------------------------------------------------------------------ tile decoder */

/*
 * The shared word pointer of a tile. Refills are branchless 4-byte loads; that is safe because
 * every step first runs ENSURE_INPUT, which guarantees 4 readable bytes (a step loads at most one
 * word). Near the end of the tile the last 0..3 bytes move into a zero-filled tail buffer, so
 * words past the end read as zeros; running off the tail buffer means the tile is truncated or
 * corrupt (this is also what ends a hostile stream of empty stored blocks).
 */
struct input {
    const uint8_t *next;
    const uint8_t *limit; /* last position from which 4 bytes may be loaded */
    const uint8_t *end;
    int in_tail;
    uint8_t tail[4 + 4 * GD_MAX_PHANTOM_WORDS];
};

static __attribute__((noinline)) int switch_to_tail(struct input *in)
{
    if (in->in_tail) return 0;
    size_t left = (size_t)(in->end - in->next);
    memset(in->tail, 0, sizeof(in->tail));
    memcpy(in->tail, in->next, left);
    in->next = in->tail;
    in->limit = in->tail + sizeof(in->tail) - 4;
    in->in_tail = 1;
    return 1;
}

#define ENSURE_INPUT()                                                                                           \
    do {                                                                                                         \
        if (GD_UNLIKELY(in_next > in.limit)) {                                                                   \
            in.next = in_next;                                                                                   \
            SAFETY_CHECK(switch_to_tail(&in), "tile data ends too early");                                       \
            in_next = in.next;                                                                                   \
        }                                                                                                        \
    } while (0)

/* Refill check on a lane held in registers (b, a): branchless, one word at most. */
#define REFILL_BA(b, a)                                                                                          \
    do {                                                                                                         \
        /* a < 64 always, so bit 5 of a says "32 or more held": mask = all ones iff a < 32 */                   \
        uint64_t mask_ = (uint64_t)((a) >> 5) - 1;                                                               \
        (b) |= ((uint64_t)gd_load32le(in_next) << (a)) & mask_;                                                  \
        in_next += 4 & mask_;                                                                                    \
        (a) += (unsigned)(32 & mask_);                                                                           \
    } while (0)

#define REFILL(L) REFILL_BA(buf[L], avail[L])

#define TAKE(L, n, dst)                                                                                          \
    do {                                                                                                         \
        (dst) = (unsigned)(buf[L] & ((1ull << (n)) - 1));                                                        \
        buf[L] >>= (n);                                                                                          \
        avail[L] -= (n);                                                                                         \
    } while (0)

static const uint8_t gd_zero16[16];

/* Hide a value from the optimizer so that selects on it stay branch-free. */
#define GD_OPAQUE(v) __asm__("" : "+r"(v))

static inline unsigned gd_popcount32(uint32_t v)
{
    return (unsigned)__builtin_popcount(v);
}

static inline uint64_t gd_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void gd_store64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* A word whose first byte in memory is `byte` and the rest zeros. */
static inline uint64_t gd_byte_word(uint64_t byte)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return byte << 56;
#else
    return byte;
#endif
}

/* Copy a match of `len` bytes from dst - dist; the caller checked both against the tile. */
static inline void copy_match(uint8_t *dst, size_t dist, size_t len, const uint8_t *out_end)
{
    const uint8_t *src = dst - dist;
    uint8_t *end = dst + len;
    if (dist >= 8) {
        if (GD_LIKELY((size_t)(out_end - end) >= 16)) {
            /* Word copies may run up to 15 bytes past the match, still inside this tile; most
             * matches are at most 16 bytes, so two unconditional words finish them. */
            uint64_t v;
            memcpy(&v, src, 8);
            memcpy(dst, &v, 8);
            memcpy(&v, src + 8, 8);
            memcpy(dst + 8, &v, 8);
            if (GD_UNLIKELY(len > 16)) {
                src += 16;
                dst += 16;
                do {
                    memcpy(&v, src, 8);
                    memcpy(dst, &v, 8);
                    src += 8;
                    dst += 8;
                } while (dst < end);
            }
            return;
        }
        while (end - dst >= 8) {
            uint64_t v;
            memcpy(&v, src, 8);
            memcpy(dst, &v, 8);
            src += 8;
            dst += 8;
        }
    } else if (dist == 1) {
        memset(dst, *src, len);
        return;
    }
    while (dst < end) *dst++ = *src++;
}

/* ------------------------------------------------------------------ vector rounds (x86-64) */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(GD_DISABLE_BMI2)
#define GD_HAVE_VECTOR_ROUNDS 1
#include <immintrin.h>
/* Hide a vector from the optimizer (keeps a load separate from the instruction using it). */
#define GD_OPAQUE_V(v) __asm__("" : "+v"(v))

/*
 * Write one round's tokens (lanes in `act`, in lane order) from the per-lane slots filled by a
 * vector round: tok_len[L] = 1 and tok_arg[L] = the byte for a literal, or a match's length and
 * distance (matches are 3 or longer). `hard`: a match of the round is closer than 8 bytes or its
 * distance exceeds the output so far at the round's start.
 */
static inline __attribute__((always_inline)) enum gdeflate_result
write_round(uint32_t act, int hard, const uint32_t *tok_len, const uint32_t *tok_arg, uint8_t **out_io,
            uint8_t *const out_start, uint8_t *const out_end, const char **reason)
{
    uint8_t *out_next = *out_io;
    uint32_t m = act;
    if (GD_LIKELY(!hard && (size_t)(out_end - out_next) >= 32 * 16 + 16)) {
        /* No match this round is closer than 8 or reaches before the tile, and the tile has
         * room for 16 bytes per token past the current one: every token starts with one
         * branch-free 16-byte copy, a match from its source, a literal from its own token
         * slot (little-endian: the literal, then bytes that what follows overwrites). Only
         * matches longer than 16 (about one in twenty) branch, to copy the rest. */
        for (; m; m &= m - 1) {
            unsigned t = (unsigned)__builtin_ctz(m);
            uint64_t len = tok_len[t], arg = tok_arg[t];
            uintptr_t is_match = (uintptr_t)0 - (uintptr_t)(len != 1);
            GD_OPAQUE(is_match);
            uintptr_t src = (((uintptr_t)out_next - arg) & is_match) | ((uintptr_t)&tok_arg[t] & ~is_match);
            gd_store64(out_next, gd_load64((const uint8_t *)src));
            gd_store64(out_next + 8, gd_load64((const uint8_t *)src + 8));
            if (GD_UNLIKELY(len > 16)) {
                /* keep room for 16 bytes per later token of the round, or finish it with care */
                if (GD_UNLIKELY((size_t)(out_end - out_next) < len + 32 * 16 + 16)) break;
                for (size_t i = 16; i < len; i += 8) gd_store64(out_next + i, gd_load64((const uint8_t *)src + i));
            }
            out_next += len;
        }
    }
    for (; m; m &= m - 1) {
        unsigned t = (unsigned)__builtin_ctz(m);
        size_t len = tok_len[t], arg = tok_arg[t];
        size_t room = (size_t)(out_end - out_next);
        if (len == 1) {
            if (GD_UNLIKELY(room == 0)) {
                *reason = "literal overflows the tile";
                return GDEFLATE_BAD_DATA;
            }
            *out_next++ = (uint8_t)arg;
            continue;
        }
        if (GD_UNLIKELY(arg > (size_t)(out_next - out_start))) {
            *reason = "match distance reaches before the tile";
            return GDEFLATE_BAD_DATA;
        }
        if (GD_UNLIKELY(len > room)) {
            *reason = "match overflows the tile";
            return GDEFLATE_BAD_DATA;
        }
        copy_match(out_next, arg, len, out_end);
        out_next += len;
    }
    *out_io = out_next;
    return GDEFLATE_SUCCESS;
}

#ifndef GD_DISABLE_AVX512
#define GD_HAVE_AVX512_PATH 1
#define GD_AVX512_TARGET                                                                                         \
    __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512vbmi2,bmi,bmi2,popcnt,lzcnt")))

/*
 * Whole rounds with the 32 lanes in vectors of 16 (the GPU decoder's shape, without its
 * threads). A lane's 64-bit bit buffer is split into a low and a high 32-bit half; a step never
 * takes more than 31 bits, so every field lies in the low half and a right shift of the buffer
 * is one funnel shift (VBMI2) plus a shift of the high half.
 * Per round: gather every active lane's literal/length entry, take its bits, run all 32 refill
 * checks at once (the word of a refilling lane is the next one after those of the refilling
 * lanes below it: an expand of consecutive words), then gather the distances of the lanes that
 * read a length; then write the round's tokens in lane order.
 * It stops at a round boundary, with every lane's refill applied, before a round it cannot do
 * (fewer than 32 loadable words, end of block, undefined symbol); the caller does that round.
 * `buf`/`avail`/`pend` are the lane state in the caller's form; *base is the next word.
 */
GD_AVX512_TARGET static enum gdeflate_result
rounds_avx512(uint64_t *buf, unsigned *avail, uint32_t *pend_io, const uint8_t **base_io, const uint8_t *in_limit,
              const uint32_t *lt, const uint32_t *dt, uint8_t **out_io, uint8_t *const out_start,
              uint8_t *const out_end, const char **reason)
{
    uint32_t lo[32], hi[32];
    for (unsigned L = 0; L < 32; L++) {
        lo[L] = (uint32_t)buf[L];
        hi[L] = (uint32_t)(buf[L] >> 32);
    }
    __m512i BL[2], BH[2], A[2];
    for (unsigned h = 0; h < 2; h++) {
        BL[h] = _mm512_loadu_si512(lo + 16 * h);
        BH[h] = _mm512_loadu_si512(hi + 16 * h);
        A[h] = _mm512_loadu_si512(avail + 16 * h);
    }
    uint32_t pend = *pend_io;
    const uint8_t *base = *base_io;
    uint8_t *out_next = *out_io;
    const __m512i lit_mask = _mm512_set1_epi32((1u << LITLEN_TABLEBITS) - 1);
    const __m512i dist_mask = _mm512_set1_epi32((1u << DIST_TABLEBITS) - 1);
    const __m512i byte_mask = _mm512_set1_epi32(0xff);
    const __m512i five_bits = _mm512_set1_epi32(31);
    const __m512i ones = _mm512_set1_epi32(-1);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i v32 = _mm512_set1_epi32(32);
    const __m512i f_exc = _mm512_set1_epi32(E_EXCEPTIONAL);
    const __m512i f_sub = _mm512_set1_epi32(E_SUBTABLE);
    const __m512i f_lit = _mm512_set1_epi32(E_LITERAL);
    const __m512i eight = _mm512_set1_epi32(8);
    /* 4 slots of padding: a literal in slot 31 is written with a 16-byte copy from its slot */
    uint32_t tok_len[32 + 4], tok_arg[32 + 4] = {0};
    enum gdeflate_result r = GDEFLATE_SUCCESS;

/* (v >> n) & ((1 << x) - 1) per lane, x <= 16 */
#define GD_FIELD(v, n, x) _mm512_andnot_si512(_mm512_sllv_epi32(ones, (x)), _mm512_srlv_epi32((v), (n)))
/* the lane buffers (BL[h], BH[h]) shifted right by `used` (< 32) */
#define GD_DROP(h, used)                                                                                         \
    do {                                                                                                         \
        BL[h] = _mm512_shrdv_epi32(BL[h], BH[h], (used));                                                        \
        BH[h] = _mm512_srlv_epi32(BH[h], (used));                                                                \
        A[h] = _mm512_sub_epi32(A[h], (used));                                                                   \
    } while (0)

    while (in_limit - base >= 4 * 31) {
        uint32_t act = ~pend;
        __m512i E[2];
        uint32_t exc = 0;
        for (unsigned h = 0; h < 2; h++) {
            __mmask16 ka = (__mmask16)(act >> (16 * h));
            E[h] = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), ka, _mm512_and_si512(BL[h], lit_mask), lt, 4);
            exc |= (uint32_t)_mm512_test_epi32_mask(E[h], f_exc) << (16 * h);
        }
        if (GD_UNLIKELY(exc)) {
            /* subtable pointers: one more gather; anything else exceptional ends vector work */
            exc = 0;
            for (unsigned h = 0; h < 2; h++) {
                __mmask16 ks = _mm512_test_epi32_mask(E[h], f_sub);
                if (ks) {
                    __m512i idx = _mm512_add_epi32(
                        _mm512_srli_epi32(E[h], 16),
                        GD_FIELD(BL[h], _mm512_set1_epi32(LITLEN_TABLEBITS),
                                 _mm512_and_si512(_mm512_srli_epi32(E[h], 8), five_bits)));
                    E[h] = _mm512_mask_i32gather_epi32(E[h], ks, idx, lt, 4);
                }
                exc |= (uint32_t)_mm512_test_epi32_mask(E[h], f_exc) << (16 * h);
            }
            if (exc) break;
        }
        /* literal/length: value = base (or the literal byte) + extra bits; take n + x bits */
        __m512i V[2];
        uint32_t match = 0, need = 0;
        for (unsigned h = 0; h < 2; h++) {
            __m512i n = _mm512_and_si512(E[h], byte_mask);
            __m512i x = _mm512_and_si512(_mm512_srli_epi32(E[h], 8), five_bits);
            V[h] = _mm512_add_epi32(_mm512_srli_epi32(E[h], 16), GD_FIELD(BL[h], n, x));
            GD_DROP(h, _mm512_add_epi32(n, x));
            __mmask16 ka = (__mmask16)(act >> (16 * h));
            match |= (uint32_t)_mm512_mask_testn_epi32_mask(ka, E[h], f_lit) << (16 * h);
            need |= (uint32_t)_mm512_cmplt_epu32_mask(A[h], v32) << (16 * h);
        }
        /* every lane's refill check of this round, in lane order; a refilling lane holds fewer
         * than 32 bits, all in the low half, so the word straddles the two halves at A */
        unsigned off = 0;
        for (unsigned h = 0; h < 2; h++) {
            __mmask16 kn = (__mmask16)(need >> (16 * h));
            __m512i w = _mm512_loadu_si512(base + 4 * off);
            GD_OPAQUE_V(w); /* register expand: the memory form is slower */
            w = _mm512_maskz_expand_epi32(kn, w);
            BL[h] = _mm512_or_si512(BL[h], _mm512_sllv_epi32(w, A[h]));
            BH[h] = _mm512_or_si512(BH[h], _mm512_srlv_epi32(w, _mm512_sub_epi32(v32, A[h])));
            A[h] = _mm512_mask_add_epi32(A[h], kn, A[h], v32);
            off += (unsigned)__builtin_popcount(kn);
        }
        base += 4 * off;
        /* distances of the lanes that read a length; each token as (length, dist) for a match
         * and (1, byte) for a literal (matches are 3 or longer) */
        const __m512i pos_v = _mm512_set1_epi32((int)(out_next - out_start));
        __mmask16 hard = 0; /* a match this round overlaps its source or reaches before the tile */
        for (unsigned h = 0; h < 2; h++) {
            __mmask16 km = (__mmask16)(match >> (16 * h));
            __m512i DE = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), km, _mm512_and_si512(BL[h], dist_mask), dt, 4);
            __mmask16 ks = _mm512_test_epi32_mask(DE, f_sub);
            if (GD_UNLIKELY(ks)) {
                __m512i idx = _mm512_add_epi32(_mm512_srli_epi32(DE, 16),
                                               GD_FIELD(BL[h], _mm512_set1_epi32(DIST_TABLEBITS),
                                                        _mm512_and_si512(_mm512_srli_epi32(DE, 8), five_bits)));
                DE = _mm512_mask_i32gather_epi32(DE, ks, idx, dt, 4);
            }
            __m512i n = _mm512_and_si512(DE, byte_mask);
            __m512i x = _mm512_and_si512(_mm512_srli_epi32(DE, 8), five_bits);
            __m512i D = _mm512_add_epi32(_mm512_srli_epi32(DE, 16), GD_FIELD(BL[h], n, x));
            GD_DROP(h, _mm512_add_epi32(n, x));
            _mm512_storeu_si512(tok_len + 16 * h, _mm512_mask_blend_epi32(km, one, V[h]));
            _mm512_storeu_si512(tok_arg + 16 * h, _mm512_mask_blend_epi32(km, V[h], D));
            hard |= _mm512_mask_cmplt_epu32_mask(km, D, eight) | _mm512_mask_cmpgt_epu32_mask(km, D, pos_v);
        }
#undef GD_FIELD
#undef GD_DROP
        pend = match;
        r = write_round(act, hard != 0, tok_len, tok_arg, &out_next, out_start, out_end, reason);
        if (r != GDEFLATE_SUCCESS) goto out;
    }
out:
    for (unsigned h = 0; h < 2; h++) {
        _mm512_storeu_si512(lo + 16 * h, BL[h]);
        _mm512_storeu_si512(hi + 16 * h, BH[h]);
        _mm512_storeu_si512(avail + 16 * h, A[h]);
    }
    for (unsigned L = 0; L < 32; L++) buf[L] = (uint64_t)hi[L] << 32 | lo[L];
    *pend_io = pend;
    *base_io = base;
    *out_io = out_next;
    return r;
}

/*
 * Stored-block bytes, whole rounds of 32: byte k of a round is the low byte of lane k, every lane
 * drops 8 bits, then the round's refill checks run at once as in rounds_avx512. Stops when fewer
 * than 32 bytes are left or fewer than 32 words are loadable; returns the bytes written.
 */
GD_AVX512_TARGET static size_t stored_avx512(uint64_t *buf, unsigned *avail, const uint8_t **base_io,
                                             const uint8_t *in_limit, uint8_t *out, size_t len)
{
    uint32_t lo[32], hi[32];
    for (unsigned L = 0; L < 32; L++) {
        lo[L] = (uint32_t)buf[L];
        hi[L] = (uint32_t)(buf[L] >> 32);
    }
    __m512i BL[2], BH[2], A[2];
    for (unsigned h = 0; h < 2; h++) {
        BL[h] = _mm512_loadu_si512(lo + 16 * h);
        BH[h] = _mm512_loadu_si512(hi + 16 * h);
        A[h] = _mm512_loadu_si512(avail + 16 * h);
    }
    const uint8_t *base = *base_io;
    const __m512i eight = _mm512_set1_epi32(8);
    const __m512i v32 = _mm512_set1_epi32(32);
    size_t k = 0;
    while (len - k >= 32 && in_limit - base >= 4 * 31) {
        unsigned off = 0;
        for (unsigned h = 0; h < 2; h++) {
            _mm_storeu_si128((__m128i *)(out + k + 16 * h), _mm512_cvtepi32_epi8(BL[h]));
            BL[h] = _mm512_shrdv_epi32(BL[h], BH[h], eight);
            BH[h] = _mm512_srlv_epi32(BH[h], eight);
            A[h] = _mm512_sub_epi32(A[h], eight);
        }
        for (unsigned h = 0; h < 2; h++) {
            __mmask16 kn = _mm512_cmplt_epu32_mask(A[h], v32);
            __m512i w = _mm512_loadu_si512(base + 4 * off);
            GD_OPAQUE_V(w);
            w = _mm512_maskz_expand_epi32(kn, w);
            BL[h] = _mm512_or_si512(BL[h], _mm512_sllv_epi32(w, A[h]));
            BH[h] = _mm512_or_si512(BH[h], _mm512_srlv_epi32(w, _mm512_sub_epi32(v32, A[h])));
            A[h] = _mm512_mask_add_epi32(A[h], kn, A[h], v32);
            off += (unsigned)__builtin_popcount(kn);
        }
        base += 4 * off;
        k += 32;
    }
    for (unsigned h = 0; h < 2; h++) {
        _mm512_storeu_si512(lo + 16 * h, BL[h]);
        _mm512_storeu_si512(hi + 16 * h, BH[h]);
        _mm512_storeu_si512(avail + 16 * h, A[h]);
    }
    for (unsigned L = 0; L < 32; L++) buf[L] = (uint64_t)hi[L] << 32 | lo[L];
    *base_io = base;
    return k;
}
#endif /* GD_DISABLE_AVX512 */

#ifndef GD_DISABLE_AVX2
#define GD_HAVE_AVX2_PATH 1
#define GD_AVX2_TARGET __attribute__((target("avx2,bmi,bmi2,popcnt,lzcnt")))

/* all ones in the lanes whose bit is set in `bits` (8 lanes) */
GD_AVX2_TARGET static inline __m256i avx2_lanes(unsigned bits)
{
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), sel), sel);
}

/* one bit per lane that is not zero */
GD_AVX2_TARGET static inline unsigned avx2_nonzero(__m256i v)
{
    return ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, _mm256_setzero_si256()))) & 0xffu;
}

/*
 * The same rounds as rounds_avx512 for AVX2 CPUs: four vectors of 8 lanes, 32-bit halves; the
 * funnel shift is two shifts and an or, the expand a permute by each lane's rank among the
 * refilling lanes (a popcount of the lanes below it, by nibble lookup), masks are vectors.
 */
GD_AVX2_TARGET static enum gdeflate_result
rounds_avx2(uint64_t *buf, unsigned *avail, uint32_t *pend_io, const uint8_t **base_io, const uint8_t *in_limit,
            const uint32_t *lt, const uint32_t *dt, uint8_t **out_io, uint8_t *const out_start,
            uint8_t *const out_end, const char **reason)
{
    uint32_t lo[32], hi[32];
    for (unsigned L = 0; L < 32; L++) {
        lo[L] = (uint32_t)buf[L];
        hi[L] = (uint32_t)(buf[L] >> 32);
    }
    __m256i BL[4], BH[4], A[4];
    for (unsigned g = 0; g < 4; g++) {
        BL[g] = _mm256_loadu_si256((const __m256i *)(lo + 8 * g));
        BH[g] = _mm256_loadu_si256((const __m256i *)(hi + 8 * g));
        A[g] = _mm256_loadu_si256((const __m256i *)(avail + 8 * g));
    }
    uint32_t pend = *pend_io;
    const uint8_t *base = *base_io;
    uint8_t *out_next = *out_io;
    const __m256i zero = _mm256_setzero_si256();
    const __m256i lit_mask = _mm256_set1_epi32((1u << LITLEN_TABLEBITS) - 1);
    const __m256i dist_mask = _mm256_set1_epi32((1u << DIST_TABLEBITS) - 1);
    const __m256i byte_mask = _mm256_set1_epi32(0xff);
    const __m256i five_bits = _mm256_set1_epi32(31);
    const __m256i ones = _mm256_set1_epi32(-1);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i v32 = _mm256_set1_epi32(32);
    const __m256i f_exc = _mm256_set1_epi32(E_EXCEPTIONAL);
    const __m256i f_sub = _mm256_set1_epi32(E_SUBTABLE);
    const __m256i f_lit = _mm256_set1_epi32(E_LITERAL);
    const __m256i eight = _mm256_set1_epi32(8);
    const __m256i below = _mm256_setr_epi32(0, 1, 3, 7, 15, 31, 63, 127);
    const __m256i nibble_count = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                                                  1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low_nibble = _mm256_set1_epi8(0x0f);
    /* 4 slots of padding: a literal in slot 31 is written with a 16-byte copy from its slot */
    uint32_t tok_len[32 + 4], tok_arg[32 + 4] = {0};
    enum gdeflate_result r = GDEFLATE_SUCCESS;

#define GD_FIELD8(v, n, x) _mm256_andnot_si256(_mm256_sllv_epi32(ones, (x)), _mm256_srlv_epi32((v), (n)))
#define GD_DROP8(g, used)                                                                                        \
    do {                                                                                                         \
        __m256i u_ = (used);                                                                                     \
        BL[g] = _mm256_or_si256(_mm256_srlv_epi32(BL[g], u_), _mm256_sllv_epi32(BH[g], _mm256_sub_epi32(v32, u_))); \
        BH[g] = _mm256_srlv_epi32(BH[g], u_);                                                                    \
        A[g] = _mm256_sub_epi32(A[g], u_);                                                                       \
    } while (0)

    while (in_limit - base >= 4 * 31) {
        uint32_t act = ~pend;
        __m256i E[4];
        uint32_t exc = 0;
        for (unsigned g = 0; g < 4; g++) {
            E[g] = _mm256_mask_i32gather_epi32(zero, (const int *)lt, _mm256_and_si256(BL[g], lit_mask),
                                               avx2_lanes((act >> (8 * g)) & 0xff), 4);
            exc |= avx2_nonzero(_mm256_and_si256(E[g], f_exc)) << (8 * g);
        }
        if (GD_UNLIKELY(exc)) {
            exc = 0;
            for (unsigned g = 0; g < 4; g++) {
                unsigned ks = avx2_nonzero(_mm256_and_si256(E[g], f_sub));
                if (ks) {
                    __m256i idx = _mm256_add_epi32(
                        _mm256_srli_epi32(E[g], 16),
                        GD_FIELD8(BL[g], _mm256_set1_epi32(LITLEN_TABLEBITS),
                                  _mm256_and_si256(_mm256_srli_epi32(E[g], 8), five_bits)));
                    E[g] = _mm256_mask_i32gather_epi32(E[g], (const int *)lt, idx, avx2_lanes(ks), 4);
                }
                exc |= avx2_nonzero(_mm256_and_si256(E[g], f_exc)) << (8 * g);
            }
            if (exc) break;
        }
        __m256i V[4];
        uint32_t match = 0, need = 0;
        for (unsigned g = 0; g < 4; g++) {
            __m256i n = _mm256_and_si256(E[g], byte_mask);
            __m256i x = _mm256_and_si256(_mm256_srli_epi32(E[g], 8), five_bits);
            V[g] = _mm256_add_epi32(_mm256_srli_epi32(E[g], 16), GD_FIELD8(BL[g], n, x));
            GD_DROP8(g, _mm256_add_epi32(n, x));
            unsigned lit = avx2_nonzero(_mm256_and_si256(E[g], f_lit));
            match |= (((act >> (8 * g)) & 0xffu) & ~lit) << (8 * g);
            need |= (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(v32, A[g]))) << (8 * g);
        }
        unsigned off = 0;
        for (unsigned g = 0; g < 4; g++) {
            unsigned kn = (need >> (8 * g)) & 0xff;
            /* rank of each lane among the refilling ones = popcount of the refilling lanes below it */
            __m256i lower = _mm256_and_si256(_mm256_set1_epi32((int)kn), below);
            __m256i rank = _mm256_add_epi8(
                _mm256_shuffle_epi8(nibble_count, _mm256_and_si256(lower, low_nibble)),
                _mm256_shuffle_epi8(nibble_count, _mm256_and_si256(_mm256_srli_epi32(lower, 4), low_nibble)));
            __m256i w = _mm256_loadu_si256((const __m256i *)(base + 4 * off));
            __m256i kv = avx2_lanes(kn);
            w = _mm256_and_si256(_mm256_permutevar8x32_epi32(w, rank), kv);
            BL[g] = _mm256_or_si256(BL[g], _mm256_sllv_epi32(w, A[g]));
            BH[g] = _mm256_or_si256(BH[g], _mm256_srlv_epi32(w, _mm256_sub_epi32(v32, A[g])));
            A[g] = _mm256_add_epi32(A[g], _mm256_and_si256(v32, kv));
            off += (unsigned)__builtin_popcount(kn);
        }
        base += 4 * off;
        const __m256i pos_v = _mm256_set1_epi32((int)(out_next - out_start));
        unsigned hard = 0;
        for (unsigned g = 0; g < 4; g++) {
            __m256i kmv = avx2_lanes((match >> (8 * g)) & 0xff);
            __m256i DE = _mm256_mask_i32gather_epi32(zero, (const int *)dt, _mm256_and_si256(BL[g], dist_mask), kmv, 4);
            unsigned ks = avx2_nonzero(_mm256_and_si256(DE, f_sub));
            if (GD_UNLIKELY(ks)) {
                __m256i idx = _mm256_add_epi32(_mm256_srli_epi32(DE, 16),
                                               GD_FIELD8(BL[g], _mm256_set1_epi32(DIST_TABLEBITS),
                                                         _mm256_and_si256(_mm256_srli_epi32(DE, 8), five_bits)));
                DE = _mm256_mask_i32gather_epi32(DE, (const int *)dt, idx, avx2_lanes(ks), 4);
            }
            __m256i n = _mm256_and_si256(DE, byte_mask);
            __m256i x = _mm256_and_si256(_mm256_srli_epi32(DE, 8), five_bits);
            __m256i D = _mm256_add_epi32(_mm256_srli_epi32(DE, 16), GD_FIELD8(BL[g], n, x));
            GD_DROP8(g, _mm256_add_epi32(n, x));
            _mm256_storeu_si256((__m256i *)(tok_len + 8 * g), _mm256_blendv_epi8(one, V[g], kmv));
            _mm256_storeu_si256((__m256i *)(tok_arg + 8 * g), _mm256_blendv_epi8(V[g], D, kmv));
            /* distances are at most 65536 and positions below 65536, so signed compares do */
            __m256i bad = _mm256_and_si256(kmv, _mm256_or_si256(_mm256_cmpgt_epi32(eight, D), _mm256_cmpgt_epi32(D, pos_v)));
            hard |= (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(bad));
        }
#undef GD_FIELD8
#undef GD_DROP8
        pend = match;
        r = write_round(act, hard != 0, tok_len, tok_arg, &out_next, out_start, out_end, reason);
        if (r != GDEFLATE_SUCCESS) goto out;
    }
out:
    for (unsigned g = 0; g < 4; g++) {
        _mm256_storeu_si256((__m256i *)(lo + 8 * g), BL[g]);
        _mm256_storeu_si256((__m256i *)(hi + 8 * g), BH[g]);
        _mm256_storeu_si256((__m256i *)(avail + 8 * g), A[g]);
    }
    for (unsigned L = 0; L < 32; L++) buf[L] = (uint64_t)hi[L] << 32 | lo[L];
    *pend_io = pend;
    *base_io = base;
    *out_io = out_next;
    return r;
}

/* stored_avx512 for AVX2: four vectors of 8 lanes, the expand done as in rounds_avx2. */
GD_AVX2_TARGET static size_t stored_avx2(uint64_t *buf, unsigned *avail, const uint8_t **base_io,
                                         const uint8_t *in_limit, uint8_t *out, size_t len)
{
    uint32_t lo[32], hi[32];
    for (unsigned L = 0; L < 32; L++) {
        lo[L] = (uint32_t)buf[L];
        hi[L] = (uint32_t)(buf[L] >> 32);
    }
    __m256i BL[4], BH[4], A[4];
    for (unsigned g = 0; g < 4; g++) {
        BL[g] = _mm256_loadu_si256((const __m256i *)(lo + 8 * g));
        BH[g] = _mm256_loadu_si256((const __m256i *)(hi + 8 * g));
        A[g] = _mm256_loadu_si256((const __m256i *)(avail + 8 * g));
    }
    const uint8_t *base = *base_io;
    const __m256i eight = _mm256_set1_epi32(8);
    const __m256i v24 = _mm256_set1_epi32(24);
    const __m256i v32 = _mm256_set1_epi32(32);
    const __m256i below = _mm256_setr_epi32(0, 1, 3, 7, 15, 31, 63, 127);
    const __m256i nibble_count = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                                                  1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low_nibble = _mm256_set1_epi8(0x0f);
    /* byte 0 of each 32-bit lane to the first 4 bytes of its 128-bit half, then both halves together */
    const __m256i first_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8,
                                                 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i join = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
    size_t k = 0;
    while (len - k >= 32 && in_limit - base >= 4 * 31) {
        unsigned off = 0;
        for (unsigned g = 0; g < 4; g++) {
            __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(BL[g], first_bytes), join);
            _mm_storel_epi64((__m128i *)(out + k + 8 * g), _mm256_castsi256_si128(bytes));
            BL[g] = _mm256_or_si256(_mm256_srlv_epi32(BL[g], eight), _mm256_sllv_epi32(BH[g], v24));
            BH[g] = _mm256_srlv_epi32(BH[g], eight);
            A[g] = _mm256_sub_epi32(A[g], eight);
        }
        for (unsigned g = 0; g < 4; g++) {
            unsigned kn = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(v32, A[g])));
            __m256i lower = _mm256_and_si256(_mm256_set1_epi32((int)kn), below);
            __m256i rank = _mm256_add_epi8(
                _mm256_shuffle_epi8(nibble_count, _mm256_and_si256(lower, low_nibble)),
                _mm256_shuffle_epi8(nibble_count, _mm256_and_si256(_mm256_srli_epi32(lower, 4), low_nibble)));
            __m256i kv = avx2_lanes(kn);
            __m256i w = _mm256_loadu_si256((const __m256i *)(base + 4 * off));
            w = _mm256_and_si256(_mm256_permutevar8x32_epi32(w, rank), kv);
            BL[g] = _mm256_or_si256(BL[g], _mm256_sllv_epi32(w, A[g]));
            BH[g] = _mm256_or_si256(BH[g], _mm256_srlv_epi32(w, _mm256_sub_epi32(v32, A[g])));
            A[g] = _mm256_add_epi32(A[g], _mm256_and_si256(v32, kv));
            off += (unsigned)__builtin_popcount(kn);
        }
        base += 4 * off;
        k += 32;
    }
    for (unsigned g = 0; g < 4; g++) {
        _mm256_storeu_si256((__m256i *)(lo + 8 * g), BL[g]);
        _mm256_storeu_si256((__m256i *)(hi + 8 * g), BH[g]);
        _mm256_storeu_si256((__m256i *)(avail + 8 * g), A[g]);
    }
    for (unsigned L = 0; L < 32; L++) buf[L] = (uint64_t)hi[L] << 32 | lo[L];
    *base_io = base;
    return k;
}
#endif /* GD_DISABLE_AVX2 */
#endif

/* The tile decoder proper; compiled once per build (below): generic, BMI2 (flag-free variable
 * shifts for the lane bit buffers, +4-8 % measured, and POPCNT), AVX2 and AVX-512 (vec = 2 / 1:
 * vector rounds and stored blocks). `rounds` = 0 keeps the step-by-step loop for whole blocks. */
static inline __attribute__((always_inline)) enum gdeflate_result
decode_tile(struct gdeflate_decompressor *d, const void *in_buf, size_t in_len, void *out, size_t out_size,
            size_t *actual_out, const char **reason, int vec, int rounds)
{
    struct input in;
    in.in_tail = 0;
    in.next = in_buf;
    in.end = in.next + in_len;
    in.limit = in.end - (in_len >= 4 ? 4 : in_len);
    if (in_len < 4) switch_to_tail(&in); /* fewer than one word: read it from the zero-padded tail */
    const uint8_t *in_next = in.next;

    uint64_t buf[GD_LANES];
    unsigned avail[GD_LANES];
    uint8_t *const out_start = out;
    uint8_t *const out_end = out_start + out_size;
    uint8_t *out_next = out_start;

    for (unsigned L = 0; L < GD_LANES; L++) {
        ENSURE_INPUT();
        buf[L] = gd_load32le(in_next);
        in_next += 4;
        avail[L] = 32;
    }

    unsigned final;
    do {
        unsigned type;
        ENSURE_INPUT();
        TAKE(0, 1, final);
        TAKE(0, 2, type);
        REFILL(0);

        if (type == 0) {
            /* Stored: 16-bit LEN on lane 0 (no NLEN, no alignment), byte k on lane k mod 32. */
            unsigned len;
            TAKE(0, 16, len);
            SAFETY_CHECK(len <= (size_t)(out_end - out_next), "stored block overflows the tile");
            unsigned k = 0;
#ifdef GD_HAVE_AVX512_PATH
            if (vec == 1) k = (unsigned)stored_avx512(buf, avail, &in_next, in.limit, out_next, len);
#endif
#ifdef GD_HAVE_AVX2_PATH
            if (vec == 2) k = (unsigned)stored_avx2(buf, avail, &in_next, in.limit, out_next, len);
#endif
            /* Bulk: while 32 words are surely readable, 32 bytes need no input checks. */
            while (len - k >= 32 && in.limit - in_next >= 4 * 32) {
                for (unsigned L = 0; L < GD_LANES; L++, k++) {
                    out_next[k] = (uint8_t)buf[L];
                    buf[L] >>= 8;
                    avail[L] -= 8;
                    REFILL(L);
                }
            }
            for (; k < len; k++) {
                unsigned L = k & 31;
                ENSURE_INPUT();
                out_next[k] = (uint8_t)buf[L];
                buf[L] >>= 8;
                avail[L] -= 8;
                REFILL(L);
            }
            out_next += len;
            for (unsigned j = 0; j < GD_LANES; j++) {
                ENSURE_INPUT();
                REFILL((len + j) & 31);
            }
            continue;
        }
        SAFETY_CHECK(type != 3, "reserved block type 3");

        const uint32_t *lt, *dt;
        if (type == 2) {
            /* Dynamic header: counts on lane 0, precode lengths on lanes 0..18, items round robin. */
            unsigned hlit, hdist, hclen;
            TAKE(0, 5, hlit);
            TAKE(0, 5, hdist);
            TAKE(0, 4, hclen);
            hlit += 257;
            hdist += 1;
            hclen += 4;
            ENSURE_INPUT();
            REFILL(0);
            uint8_t prelens[GD_NUM_PRECODE_SYMS] = {0};
            for (unsigned i = 0; i < hclen; i++) {
                unsigned v;
                TAKE(i, 3, v);
                prelens[gd_precode_order[i]] = (uint8_t)v;
                ENSURE_INPUT();
                REFILL(i);
            }
            SAFETY_CHECK(build_table(d->precode, PRECODE_ENOUGH, prelens, GD_NUM_PRECODE_SYMS, d->precode_results,
                                     PRECODE_TABLEBITS, GD_MAX_PRECODE_LEN),
                         "invalid code-length code in a dynamic block header");
            unsigned total = hlit + hdist, i = 0, L = 0;
            while (i < total) {
                uint32_t e = d->precode[buf[L] & ((1u << PRECODE_TABLEBITS) - 1)];
                unsigned n = e & 0xff, sym = e >> 16;
                buf[L] >>= n;
                avail[L] -= n;
                if (sym < 16) {
                    d->lens[i++] = (uint8_t)sym;
                } else {
                    unsigned rep;
                    uint8_t val = 0;
                    if (sym == 16) {
                        SAFETY_CHECK(i > 0, "code-length repeat with no previous length");
                        val = d->lens[i - 1];
                        TAKE(L, 2, rep);
                        rep += 3;
                    } else if (sym == 17) {
                        TAKE(L, 3, rep);
                        rep += 3;
                    } else {
                        TAKE(L, 7, rep);
                        rep += 11;
                    }
                    /* A run past the total is tolerated (as by the reference); the excess is dropped. */
                    memset(&d->lens[i], val, rep);
                    i += rep;
                }
                ENSURE_INPUT();
                REFILL(L);
                L = (L + 1) & 31;
            }
            SAFETY_CHECK(build_table(d->litlen, LITLEN_ENOUGH, d->lens, hlit, d->litlen_results, LITLEN_TABLEBITS,
                                     GD_MAX_CODEWORD_LEN),
                         "invalid literal/length code in a dynamic block header");
            SAFETY_CHECK(build_table(d->dist, DIST_ENOUGH, d->lens + hlit, hdist, d->dist_results, DIST_TABLEBITS,
                                     GD_MAX_CODEWORD_LEN),
                         "invalid distance code in a dynamic block header");
            lt = d->litlen;
            dt = d->dist;
        } else {
            SAFETY_CHECK(ensure_fixed_tables(d), "internal: fixed code tables");
            lt = d->fixed_litlen;
            dt = d->fixed_dist;
        }

        uint32_t pending = 0; /* lanes whose distance was consumed early (sequential shortcut) */
        unsigned L = 0;
        if (!rounds) goto sequential;
        {
            /*
             * Round loop. A round is one pass over the 32 lanes starting at lane 0. With the
             * sequential shortcut every lane gets exactly one refill check per round, in lane
             * order: an active lane after its literal/length, a lane skipping its turn (its
             * match's distance was read early) with the bits left after that distance. So the
             * word a lane loads is `base + 4 * (refilling lanes below it)`, and lanes that skip
             * the round need not be visited at all: their refill is applied when they are next
             * visited (`lazy`), from the previous round's base and refill mask. Inside a round
             * there are no data-dependent branches: literals and matches share one path (a
             * literal also looks up a distance and then drops it) and both store 16 bytes.
             */
            uint32_t pend = 0;   /* lanes that skip this round (their match was in the last one) */
            uint32_t pn = 0;     /* ... of which these load a word in this round (< 32 bits held) */
            uint32_t lazy = 0;   /* lanes whose refill from the last round is still to apply */
            uint32_t prev_R = 0; /* lanes that loaded a word in the last round */
            const uint8_t *base = in_next, *prev_base = in_next;
            int vec_ready = 1; /* the vector rounds may run (not right after they stopped) */
            for (;;) {
#ifdef GD_HAVE_VECTOR_ROUNDS
                if (vec && vec_ready && in.limit - base >= 4 * 31) {
                    for (uint32_t m = lazy; m; m &= m - 1) {
                        unsigned P = (unsigned)__builtin_ctz(m);
                        buf[P] |= (uint64_t)gd_load32le(prev_base + 4 * gd_popcount32(prev_R & ((1u << P) - 1)))
                                  << avail[P];
                        avail[P] += 32;
                    }
                    enum gdeflate_result vr = GDEFLATE_SUCCESS;
#ifdef GD_HAVE_AVX512_PATH
                    if (vec == 1)
                        vr = rounds_avx512(buf, avail, &pend, &base, in.limit, lt, dt, &out_next, out_start, out_end,
                                           reason);
#endif
#ifdef GD_HAVE_AVX2_PATH
                    if (vec == 2)
                        vr = rounds_avx2(buf, avail, &pend, &base, in.limit, lt, dt, &out_next, out_start, out_end,
                                         reason);
#endif
                    if (vr != GDEFLATE_SUCCESS) return vr;
                    /* back to this loop's form: nothing owed, pn from the skipping lanes' counts */
                    lazy = 0;
                    pn = 0;
                    for (uint32_t m = pend; m; m &= m - 1) {
                        unsigned P = (unsigned)__builtin_ctz(m);
                        pn |= (uint32_t)(avail[P] < 32) << P;
                    }
                    vec_ready = 0;
                }
#else
                (void)vec;
                (void)vec_ready;
#endif
                if (GD_UNLIKELY(in.limit - base < 4 * 31)) {
                    /* Fewer than 32 loadable words: finish the block step by step from lane 0. */
                    for (uint32_t m = lazy; m; m &= m - 1) {
                        unsigned P = (unsigned)__builtin_ctz(m);
                        buf[P] |= (uint64_t)gd_load32le(prev_base + 4 * gd_popcount32(prev_R & ((1u << P) - 1)))
                                  << avail[P];
                        avail[P] += 32;
                    }
                    in_next = base;
                    pending = pend;
                    goto sequential;
                }
                uint32_t act = ~pend, new_pend = 0, new_pn = 0, arefill = 0;
                const uint8_t *wp = base; /* base + 4 * (active lanes that loaded a word so far) */
                while (act) {
                    L = (unsigned)__builtin_ctz(act);
                    act &= act - 1;
                    uint32_t below = (1u << L) - 1;
                    uint64_t b = buf[L];
                    unsigned a = avail[L];
                    /* the refill this lane was owed from the last round, if any */
                    uint64_t lm = 0 - (uint64_t)((lazy >> L) & 1);
                    b |= ((uint64_t)gd_load32le(prev_base + 4 * gd_popcount32(prev_R & below)) << a) & lm;
                    a += 32 & (unsigned)lm;

                    uint32_t e = lt[b & ((1u << LITLEN_TABLEBITS) - 1)];
                    if (GD_UNLIKELY(e & E_EXCEPTIONAL)) {
                        if (e & E_SUBTABLE)
                            e = lt[(e >> 16) + ((b >> LITLEN_TABLEBITS) & ((1u << ((e >> 8) & 31)) - 1))];
                        if (e & E_EXCEPTIONAL) {
                            SAFETY_CHECK(e & E_EOB, "undefined literal/length symbol 286 or 287");
                            unsigned n = e & 0xff;
                            buf[L] = b >> n;
                            avail[L] = a - n;
                            /* Lanes after L never reached their turn: give them last round's refill. */
                            for (uint32_t m = lazy & ~((2u << L) - 1); m; m &= m - 1) {
                                unsigned P = (unsigned)__builtin_ctz(m);
                                buf[P] |= (uint64_t)gd_load32le(prev_base +
                                                                4 * gd_popcount32(prev_R & ((1u << P) - 1)))
                                          << avail[P];
                                avail[P] += 32;
                            }
                            /* This round's checks in order: lanes below L (done for active ones,
                             * owed by skipping ones), then the sweep's L and the skipping lanes
                             * above L; the sweep below finishes lanes 0..L-1. */
                            uint32_t R = arefill | pn | ((uint32_t)(avail[L] < 32) << L);
                            for (uint32_t m = pn | (R & (1u << L)); m; m &= m - 1) {
                                unsigned P = (unsigned)__builtin_ctz(m);
                                buf[P] |= (uint64_t)gd_load32le(base + 4 * gd_popcount32(R & ((1u << P) - 1)))
                                          << avail[P];
                                avail[P] += 32;
                            }
                            in_next = base + 4 * gd_popcount32(R);
                            goto sweep;
                        }
                    }
                    unsigned n = e & 0xff, x = (e >> 8) & 31;
                    uint32_t is_lit = (e >> 15) & 1;
                    /* literal: its byte; length symbol: base + extra bits */
                    size_t value = (e >> 16) + (size_t)((b >> n) & ((1u << x) - 1));
                    b >>= n + x;
                    a -= n + x;
                    /* this lane's refill check */
                    uint64_t rm = (uint64_t)(a >> 5) - 1; /* all ones iff a < 32 */
                    b |= ((uint64_t)gd_load32le(wp + 4 * gd_popcount32(pn & below)) << a) & rm;
                    wp += 4 & rm;
                    arefill |= (1u << L) & (uint32_t)rm;
                    a += 32 & (unsigned)rm;
                    /* the distance right behind a length (looked up and dropped for a literal) */
                    uint32_t de = dt[b & ((1u << DIST_TABLEBITS) - 1)];
                    if (GD_UNLIKELY(de & E_SUBTABLE))
                        de = dt[(de >> 16) + ((b >> DIST_TABLEBITS) & ((1u << ((de >> 8) & 31)) - 1))];
                    unsigned dn = de & 0xff, dx = (de >> 8) & 31;
                    size_t dist = (de >> 16) + (size_t)((b >> dn) & ((1u << dx) - 1));
                    uint32_t mm = is_lit - 1; /* all ones for a match */
                    unsigned dbits = (dn + dx) & mm;
                    b >>= dbits;
                    a -= dbits;
                    buf[L] = b;
                    avail[L] = a;
                    new_pend |= (1u << L) & mm;
                    new_pn |= (1u << L) & mm & ((a >> 5) - 1);

                    size_t len = is_lit ? 1 : value;
                    size_t room = (size_t)(out_end - out_next);
                    if (GD_LIKELY(len <= 16 && room >= 16 &&
                                  (is_lit || (dist >= 8 && dist <= (size_t)(out_next - out_start))))) {
                        /* 16 bytes either way: a literal's byte and zeros, or a short match's words
                         * (source at least 8 back, so the second word sees the first). */
                        const uint8_t *src = is_lit ? gd_zero16 : out_next - dist;
                        uint64_t lo = gd_load64(src);
                        lo = is_lit ? gd_byte_word(value) : lo;
                        gd_store64(out_next, lo);
                        gd_store64(out_next + 8, gd_load64(src + 8));
                    } else if (is_lit) {
                        SAFETY_CHECK(out_next < out_end, "literal overflows the tile");
                        *out_next = (uint8_t)value;
                    } else {
                        SAFETY_CHECK(dist <= (size_t)(out_next - out_start), "match distance reaches before the tile");
                        SAFETY_CHECK(len <= room, "match overflows the tile");
                        copy_match(out_next, dist, len, out_end);
                    }
                    out_next += len;
                }
                vec_ready = 1;
                prev_R = arefill | pn;
                prev_base = base;
                base = wp + 4 * gd_popcount32(pn);
                lazy = pn;
                pend = new_pend;
                pn = new_pn;
            }
        }
    sequential:
        L = 0;
        for (;;) {
            ENSURE_INPUT();
            if (pending & (1u << L)) {
                /* The lane's turn for its distance: only its deferred refill check remains. */
                pending &= ~(1u << L);
                REFILL(L);
                L = (L + 1) & 31;
                continue;
            }
            uint64_t b = buf[L];
            unsigned a = avail[L];
            uint32_t e = lt[b & ((1u << LITLEN_TABLEBITS) - 1)];
            if (e & E_SUBTABLE) e = lt[(e >> 16) + ((b >> LITLEN_TABLEBITS) & ((1u << ((e >> 8) & 31)) - 1))];
            unsigned n = e & 0xff;
            if (GD_LIKELY(e & E_LITERAL)) {
                SAFETY_CHECK(out_next < out_end, "literal overflows the tile");
                *out_next++ = (uint8_t)(e >> 16);
                b >>= n;
                a -= n;
                REFILL_BA(b, a);
                buf[L] = b;
                avail[L] = a;
                L = (L + 1) & 31;
            } else if (GD_LIKELY(!(e & E_EXCEPTIONAL))) {
                unsigned extra = (e >> 8) & 31;
                size_t length = (e >> 16) + (size_t)((b >> n) & ((1u << extra) - 1));
                b >>= n + extra;
                a -= n + extra;
                REFILL_BA(b, a);
                /* The distance follows on the same lane: decode it now (at most 29 bits). */
                uint32_t de = dt[b & ((1u << DIST_TABLEBITS) - 1)];
                if (de & E_SUBTABLE)
                    de = dt[(de >> 16) + ((b >> DIST_TABLEBITS) & ((1u << ((de >> 8) & 31)) - 1))];
                unsigned dn = de & 0xff, dextra = (de >> 8) & 31;
                size_t dist = (de >> 16) + (size_t)((b >> dn) & ((1u << dextra) - 1));
                buf[L] = b >> (dn + dextra);
                avail[L] = a - (dn + dextra);
                SAFETY_CHECK(dist <= (size_t)(out_next - out_start), "match distance reaches before the tile");
                SAFETY_CHECK(length <= (size_t)(out_end - out_next), "match overflows the tile");
                copy_match(out_next, dist, length, out_end);
                out_next += length;
                pending |= 1u << L;
                L = (L + 1) & 31;
            } else if (e & E_EOB) {
                buf[L] = b >> n;
                avail[L] = a - n;
                break; /* no refill check for the EOB step */
            } else {
                SAFETY_CHECK(0, "undefined literal/length symbol 286 or 287");
            }
        }
    sweep:
        /* End-of-block sweep, starting with the lane that decoded EOB. */
        for (unsigned j = 0; j < GD_LANES; j++) {
            ENSURE_INPUT();
            REFILL((L + j) & 31);
        }
    } while (!final);

    size_t produced = (size_t)(out_next - out_start);
    if (actual_out) *actual_out = produced;
    if (produced != out_size) {
        *reason = "tile decoded to fewer bytes than its declared size";
        return GDEFLATE_SHORT_OUTPUT;
    }
    return GDEFLATE_SUCCESS;
}

/* The round loop counts refilling lanes with popcount; where that is a libgcc call (x86-64
 * without POPCNT, i.e. the generic build there) the step-by-step loop is faster. */
#if defined(__x86_64__) && !defined(__POPCNT__)
#define GD_GENERIC_ROUNDS 0
#else
#define GD_GENERIC_ROUNDS 1
#endif

static enum gdeflate_result decode_tile_generic(struct gdeflate_decompressor *d, const void *in, size_t in_len,
                                                void *out, size_t out_size, size_t *actual_out, const char **reason)
{
    return decode_tile(d, in, in_len, out, out_size, actual_out, reason, 0, GD_GENERIC_ROUNDS);
}

/* -DGD_DISABLE_BMI2 builds only the generic path (the native tests run it that way too). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(GD_DISABLE_BMI2)
#define GD_HAVE_BMI2_PATH 1
__attribute__((target("bmi,bmi2,popcnt,lzcnt"))) static enum gdeflate_result
decode_tile_bmi2(struct gdeflate_decompressor *d, const void *in, size_t in_len, void *out, size_t out_size,
                 size_t *actual_out, const char **reason)
{
    return decode_tile(d, in, in_len, out, out_size, actual_out, reason, 0, 1);
}
#endif

#ifdef GD_HAVE_AVX2_PATH
static int gd_cpu_has_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
}

GD_AVX2_TARGET static enum gdeflate_result
decode_tile_avx2(struct gdeflate_decompressor *d, const void *in, size_t in_len, void *out, size_t out_size,
                 size_t *actual_out, const char **reason)
{
    return decode_tile(d, in, in_len, out, out_size, actual_out, reason, 2, 1);
}
#endif

#ifdef GD_HAVE_AVX512_PATH
static int gd_cpu_has_avx512(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("bmi2") &&
           __builtin_cpu_supports("popcnt");
}

GD_AVX512_TARGET static enum gdeflate_result
decode_tile_avx512(struct gdeflate_decompressor *d, const void *in, size_t in_len, void *out, size_t out_size,
                   size_t *actual_out, const char **reason)
{
    return decode_tile(d, in, in_len, out, out_size, actual_out, reason, 1, 1);
}
#endif

enum gdeflate_result gd_decompress_tile_impl(struct gdeflate_decompressor *d, enum gd_tile_impl impl, const void *in,
                                             size_t in_len, void *out, size_t out_size, size_t *actual_out,
                                             const char **reason)
{
    *reason = "";
    if (actual_out) *actual_out = 0;
    switch (impl) {
    case GD_IMPL_GENERIC: return decode_tile_generic(d, in, in_len, out, out_size, actual_out, reason);
#ifdef GD_HAVE_BMI2_PATH
    case GD_IMPL_BMI2:
        if (!__builtin_cpu_supports("bmi2")) break;
        return decode_tile_bmi2(d, in, in_len, out, out_size, actual_out, reason);
#endif
#ifdef GD_HAVE_AVX2_PATH
    case GD_IMPL_AVX2:
        if (!gd_cpu_has_avx2()) break;
        return decode_tile_avx2(d, in, in_len, out, out_size, actual_out, reason);
#endif
#ifdef GD_HAVE_AVX512_PATH
    case GD_IMPL_AVX512:
        if (!gd_cpu_has_avx512()) break;
        return decode_tile_avx512(d, in, in_len, out, out_size, actual_out, reason);
#endif
    default: break;
    }
    *reason = "decoder implementation not available here";
    return GDEFLATE_BAD_ARGUMENT;
}

enum gdeflate_result gdeflate_decompress_tile(struct gdeflate_decompressor *d, const void *in_buf, size_t in_len,
                                              void *out, size_t out_size, size_t *actual_out, const char **reason_out)
{
    const char *dummy_reason = "";
    const char **reason = reason_out ? reason_out : &dummy_reason;
    *reason = "";
    if (actual_out) *actual_out = 0;
    if (d == NULL || (in_buf == NULL && in_len) || (out == NULL && out_size)) {
        *reason = "NULL buffer";
        return GDEFLATE_BAD_ARGUMENT;
    }
#ifdef GD_HAVE_AVX512_PATH
    if (gd_cpu_has_avx512())
        return decode_tile_avx512(d, in_buf, in_len, out, out_size, actual_out, reason);
#endif
#ifdef GD_HAVE_AVX2_PATH
    if (gd_cpu_has_avx2()) return decode_tile_avx2(d, in_buf, in_len, out, out_size, actual_out, reason);
#endif
#ifdef GD_HAVE_BMI2_PATH
    if (__builtin_cpu_supports("bmi2"))
        return decode_tile_bmi2(d, in_buf, in_len, out, out_size, actual_out, reason);
#endif
    return decode_tile_generic(d, in_buf, in_len, out, out_size, actual_out, reason);
}

/* ------------------------------------------------------------------ container */

#define CONTAINER_CHECK(cond, why)                                                                               \
    do {                                                                                                         \
        if (GD_UNLIKELY(!(cond))) {                                                                              \
            err->tile = -1;                                                                                      \
            err->reason = (why);                                                                                 \
            return GDEFLATE_BAD_DATA;                                                                            \
        }                                                                                                        \
    } while (0)

static uint32_t table_entry(const uint8_t *in, uint32_t i)
{
    return gd_load32le(in + GDEFLATE_HEADER_SIZE + 4 * (size_t)i);
}

enum gdeflate_result gdeflate_parse_header(const void *in_v, size_t in_len, struct gdeflate_stream_info *info,
                                           struct gdeflate_error *err_out)
{
    struct gdeflate_error dummy;
    struct gdeflate_error *err = err_out ? err_out : &dummy;
    err->tile = -1;
    err->reason = "";
    const uint8_t *in = in_v;
    if ((in == NULL && in_len) || info == NULL) {
        err->reason = "NULL argument";
        return GDEFLATE_BAD_ARGUMENT;
    }
    CONTAINER_CHECK(in_len >= GDEFLATE_HEADER_SIZE, "input shorter than the 8-byte GDeflate header");
    CONTAINER_CHECK(in[0] == GDEFLATE_CODEC_ID && in[1] == GDEFLATE_MAGIC,
                    "not a GDeflate stream (codec id/magic bytes are not 04 FB)");
    uint32_t n = (uint32_t)in[2] | ((uint32_t)in[3] << 8);
    uint32_t packed = gd_load32le(in + 4);
    uint32_t size_idx = packed & 3, last = (packed >> 2) & 0x3FFFF, reserved = packed >> 20;
    CONTAINER_CHECK(size_idx == 1, "unsupported tile size index (only 1 = 64 KiB tiles exists)");
    CONTAINER_CHECK(reserved == 0, "reserved header bits are not zero");
    CONTAINER_CHECK(last <= GDEFLATE_TILE_SIZE, "last tile size larger than 64 KiB");

    memset(info, 0, sizeof(*info));
    if (n == 0) {
        CONTAINER_CHECK(last == 0, "stream with no tiles declares a last tile size");
        CONTAINER_CHECK(in_len == GDEFLATE_HEADER_SIZE, "trailing bytes after an empty stream");
        info->data_offset = GDEFLATE_HEADER_SIZE;
        info->compressed_size = GDEFLATE_HEADER_SIZE;
        return GDEFLATE_SUCCESS;
    }
    size_t data_offset = GDEFLATE_HEADER_SIZE + 4 * (size_t)n;
    CONTAINER_CHECK(in_len >= data_offset, "input ends inside the tile table");
    size_t data_len = in_len - data_offset;
    uint32_t prev = 0;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t off = table_entry(in, i);
        CONTAINER_CHECK(off >= prev, "tile offsets are not monotonic");
        CONTAINER_CHECK(off <= data_len, "tile offset beyond the end of the input");
        prev = off;
    }
    uint64_t end = (uint64_t)prev + table_entry(in, 0);
    CONTAINER_CHECK(end <= data_len, "last tile extends past the end of the input");
    CONTAINER_CHECK(end == data_len, "trailing bytes after the last tile");

    info->num_tiles = n;
    info->last_tile_size = last ? last : GDEFLATE_TILE_SIZE;
    info->uncompressed_size = (uint64_t)(n - 1) * GDEFLATE_TILE_SIZE + info->last_tile_size;
    info->compressed_size = data_offset + end;
    info->data_offset = data_offset;
    return GDEFLATE_SUCCESS;
}

void gdeflate_tile_range(const void *in_v, const struct gdeflate_stream_info *info, uint32_t i, size_t *comp_offset,
                         size_t *comp_len, size_t *out_offset, size_t *out_len)
{
    const uint8_t *in = in_v;
    uint32_t n = info->num_tiles;
    size_t start = i == 0 ? 0 : table_entry(in, i);
    /* entry[0] is the last tile's compressed size; every other entry is an offset. */
    size_t end = i + 1 < n ? table_entry(in, i + 1) : start + table_entry(in, 0);
    *comp_offset = info->data_offset + start;
    *comp_len = end - start;
    *out_offset = (size_t)i * GDEFLATE_TILE_SIZE;
    *out_len = i + 1 == n ? info->last_tile_size : GDEFLATE_TILE_SIZE;
}

static enum gdeflate_result decode_one(struct gdeflate_decompressor *d, const uint8_t *in,
                                       const struct gdeflate_stream_info *info, uint32_t i, uint8_t *out,
                                       const char **reason)
{
    size_t co, cl, oo, ol;
    gdeflate_tile_range(in, info, i, &co, &cl, &oo, &ol);
    enum gdeflate_result r = gdeflate_decompress_tile(d, in + co, cl, out + oo, ol, NULL, reason);
    /* Inside a stream the table declares every tile's size: a short tile is corrupt data. */
    return r == GDEFLATE_SHORT_OUTPUT ? GDEFLATE_BAD_DATA : r;
}

static enum gdeflate_result check_output(const struct gdeflate_stream_info *info, void *out, size_t out_avail,
                                         struct gdeflate_error *err)
{
    if (out_avail < info->uncompressed_size) {
        err->tile = -1;
        err->reason = "output buffer smaller than the stream's uncompressed size";
        return GDEFLATE_INSUFFICIENT_SPACE;
    }
    if (out == NULL && info->uncompressed_size) {
        err->reason = "NULL output buffer";
        return GDEFLATE_BAD_ARGUMENT;
    }
    return GDEFLATE_SUCCESS;
}

enum gdeflate_result gdeflate_decompress(struct gdeflate_decompressor *d, const void *in, size_t in_len, void *out,
                                         size_t out_avail, size_t *out_len, struct gdeflate_error *err_out)
{
    struct gdeflate_error dummy;
    struct gdeflate_error *err = err_out ? err_out : &dummy;
    struct gdeflate_stream_info info;
    if (out_len) *out_len = 0;
    if (d == NULL) {
        err->tile = -1;
        err->reason = "NULL decompressor";
        return GDEFLATE_BAD_ARGUMENT;
    }
    enum gdeflate_result r = gdeflate_parse_header(in, in_len, &info, err);
    if (r != GDEFLATE_SUCCESS) return r;
    r = check_output(&info, out, out_avail, err);
    if (r != GDEFLATE_SUCCESS) return r;
    for (uint32_t i = 0; i < info.num_tiles; i++) {
        r = decode_one(d, in, &info, i, out, &err->reason);
        if (r != GDEFLATE_SUCCESS) {
            err->tile = i;
            return r;
        }
    }
    if (out_len) *out_len = (size_t)info.uncompressed_size;
    return GDEFLATE_SUCCESS;
}

/* ------------------------------------------------------------------ threads */

unsigned gdeflate_effective_threads(unsigned threads, size_t work_items)
{
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    if (threads > 256) threads = 256;
    if (work_items < threads) threads = work_items ? (unsigned)work_items : 1;
    return threads;
}

struct decode_job {
    const uint8_t *in;
    uint8_t *out;
    const struct gdeflate_stream_info *info;
    atomic_uint next_tile;
    atomic_int failed;
    pthread_mutex_t lock;
    enum gdeflate_result result;
    int64_t bad_tile;
    const char *reason;
};

static void record_failure(struct decode_job *job, enum gdeflate_result r, int64_t tile, const char *reason)
{
    pthread_mutex_lock(&job->lock);
    if (job->result == GDEFLATE_SUCCESS || tile < job->bad_tile) {
        job->result = r;
        job->bad_tile = tile;
        job->reason = reason;
    }
    pthread_mutex_unlock(&job->lock);
    atomic_store(&job->failed, 1);
}

static void *decode_worker(void *arg)
{
    struct decode_job *job = arg;
    struct gdeflate_decompressor *d = gdeflate_alloc_decompressor();
    if (d == NULL) {
        record_failure(job, GDEFLATE_NO_MEMORY, -1, "out of memory for decoder state");
        return NULL;
    }
    for (;;) {
        if (atomic_load_explicit(&job->failed, memory_order_relaxed)) break;
        unsigned i = atomic_fetch_add(&job->next_tile, 1);
        if (i >= job->info->num_tiles) break;
        const char *reason = "";
        enum gdeflate_result r = decode_one(d, job->in, job->info, i, job->out, &reason);
        if (r != GDEFLATE_SUCCESS) {
            record_failure(job, r, i, reason);
            break;
        }
    }
    gdeflate_free_decompressor(d);
    return NULL;
}

int gd_run_workers(void *(*worker)(void *), void *job, unsigned n)
{
    pthread_t tids[256];
    unsigned started = 0;
    int ok = 1;
    for (unsigned t = 1; t < n; t++) {
        if (pthread_create(&tids[started], NULL, worker, job) != 0) {
            ok = started > 0 || n == 1;
            break;
        }
        started++;
    }
    worker(job);
    for (unsigned t = 0; t < started; t++) pthread_join(tids[t], NULL);
    return ok ? 0 : -1;
}

enum gdeflate_result gdeflate_decompress_mt(const void *in, size_t in_len, void *out, size_t out_avail,
                                            size_t *out_len, unsigned threads, struct gdeflate_error *err_out)
{
    struct gdeflate_error dummy;
    struct gdeflate_error *err = err_out ? err_out : &dummy;
    struct gdeflate_stream_info info;
    if (out_len) *out_len = 0;
    enum gdeflate_result r = gdeflate_parse_header(in, in_len, &info, err);
    if (r != GDEFLATE_SUCCESS) return r;
    r = check_output(&info, out, out_avail, err);
    if (r != GDEFLATE_SUCCESS) return r;
    if (info.num_tiles == 0) return GDEFLATE_SUCCESS;

    unsigned n = gdeflate_effective_threads(threads, info.num_tiles);
    struct decode_job job = {.in = in, .out = out, .info = &info, .result = GDEFLATE_SUCCESS, .bad_tile = -1,
                             .reason = ""};
    atomic_init(&job.next_tile, 0);
    atomic_init(&job.failed, 0);
    pthread_mutex_init(&job.lock, NULL);
    gd_run_workers(decode_worker, &job, n); /* fewer threads than asked still decode every tile */
    pthread_mutex_destroy(&job.lock);
    if (job.result != GDEFLATE_SUCCESS) {
        err->tile = job.bad_tile;
        err->reason = job.reason;
        return job.result;
    }
    if (out_len) *out_len = (size_t)info.uncompressed_size;
    return GDEFLATE_SUCCESS;
}
