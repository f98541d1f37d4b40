/*
 * GDeflate encoder: tile-stream container + 32-lane tile bitstream.
 *
 * Each 64 KiB tile is parsed into DEFLATE64-flavoured tokens (window = the tile, lengths up to
 * 65535, distances up to 65536), then serialized by replaying the decoder's refill schedule:
 * every lane keeps a simulated "bits the decoder holds" count; whenever the decoder would refill a
 * lane, the lane reserves the next 32-bit word slot of the tile, and the lane's bits fill its
 * reserved slots in order (docs/codec.md). Byte identity with the reference is not a goal;
 * decodability by every GDeflate decoder is.
 *
 * Levels: 0 stored; 1-4 greedy hash chains; 5-7 lazy hash chains; 8-12 a cost-driven
 * (near-optimal) parse over cached matches, refined over several passes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gdeflate.h"
#include "gdeflate_internal.h"

#define HASH4_BITS 16u
#define HASH3_BITS 15u
#define NIL (-1)
#define MAX_CACHED_PER_POS 16u
#define MATCH_CACHE_SIZE (GDEFLATE_TILE_SIZE * 6u)
#define TILE_BOUND_BYTES (GDEFLATE_TILE_SIZE + 1024u)
#define MAX_BLOCKS 8u          /* blocks per tile (block splitting) */
#define SPLIT_UNIT 8192u       /* block boundaries fall on multiples of this */
#define SPLIT_MIN_LEVEL 6      /* levels below this keep one block per tile (speed) */

enum strategy { STORED, GREEDY, LAZY, OPTIMAL };

struct level_params {
    enum strategy strategy;
    unsigned depth;  /* hash-chain candidates examined per position */
    unsigned nice;   /* a match this long is taken without looking further */
    unsigned passes; /* cost-model refinement passes (OPTIMAL) */
};

static const struct level_params LEVELS[GDEFLATE_MAX_LEVEL + 1] = {
    {STORED, 0, 0, 0},     {GREEDY, 2, 8, 0},      {GREEDY, 6, 10, 0},    {GREEDY, 12, 14, 0},
    {GREEDY, 24, 24, 0},   {LAZY, 20, 30, 0},      {LAZY, 40, 65, 0},     {LAZY, 100, 130, 0},
    {OPTIMAL, 12, 20, 1},  {OPTIMAL, 16, 26, 2},   {OPTIMAL, 30, 50, 2},  {OPTIMAL, 60, 80, 3},
    {OPTIMAL, 100, 133, 4},
};

/* One token: len == 0 is a literal (value in `lit`), else a match of `len` bytes at `dist`. */
struct token {
    uint16_t len_minus; /* 0 = literal; else match length - 2 (lengths 3..65535 -> 1..65533) */
    uint16_t lit;
    uint32_t dist;
};

struct gdeflate_compressor {
    int level;
    struct level_params p;
    int32_t head3[1u << HASH3_BITS];       /* latest position per 3-byte hash */
    int32_t head4[1u << HASH4_BITS];       /* chain head / tree root per 4-byte hash */
    int32_t prev[GDEFLATE_TILE_SIZE];      /* hash chains (greedy/lazy levels) */
    int32_t child[2 * GDEFLATE_TILE_SIZE]; /* binary trees (near-optimal levels) */
    struct token tokens[GDEFLATE_TILE_SIZE + 1];
    struct token tokens2[GDEFLATE_TILE_SIZE + 1]; /* one block re-parsed with its own costs */
    /* near-optimal parse state */
    uint32_t cache[MATCH_CACHE_SIZE]; /* matches found per position: len | (dist - 1) << 16 */
    uint32_t cache_start[GDEFLATE_TILE_SIZE + 1];
    uint32_t cost[GDEFLATE_TILE_SIZE + 1];
    uint32_t from_len[GDEFLATE_TILE_SIZE + 1];
    uint32_t from_dist[GDEFLATE_TILE_SIZE + 1];
    uint32_t lit_cost[GD_NUM_LITLEN_SYMS];
    uint32_t dist_cost[GD_NUM_DIST_SYMS];
};

/* ------------------------------------------------------------------ symbols */

static unsigned length_symbol(unsigned len)
{
    if (len >= 258) return 285;
    /* binary search over the length bases of 257..284 */
    unsigned lo = 0, hi = 27;
    while (lo < hi) {
        unsigned mid = (lo + hi + 1) / 2;
        if (gd_length_base[mid] <= len) lo = mid;
        else hi = mid - 1;
    }
    return 257 + lo;
}

static unsigned dist_symbol(unsigned dist)
{
    /* DEFLATE distance codes: two per power of two above 4. */
    if (dist <= 4) return dist - 1;
    unsigned d = dist - 1;
    unsigned hb = 31 - (unsigned)__builtin_clz(d);
    return 2 * hb + ((d >> (hb - 1)) & 1);
}

static inline unsigned len_sym(unsigned len)
{
    return len >= 258 ? 285 : length_symbol(len);
}

/* ------------------------------------------------------------------ Huffman code construction */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Optimal code lengths limited to max_len (zlib-style overflow repair); at least two codewords
 * are always assigned so every decoder sees a complete code. */
static void build_lengths(const uint32_t *freq_in, unsigned n, unsigned max_len, uint8_t *lens)
{
    uint32_t freq[GD_NUM_LITLEN_SYMS];
    uint16_t syms[GD_NUM_LITLEN_SYMS];
    unsigned m = 0;
    memcpy(freq, freq_in, n * sizeof(uint32_t));
    unsigned used = 0;
    for (unsigned t = 0; t < n; t++) used += freq[t] != 0;
    for (unsigned t = 0; t < n && used < 2; t++)
        if (freq[t] == 0) {
            freq[t] = 1;
            used++;
        }
    memset(lens, 0, n);
    uint64_t keys[GD_NUM_LITLEN_SYMS];
    for (unsigned s = 0; s < n; s++)
        if (freq[s]) keys[m++] = ((uint64_t)freq[s] << 16) | s;
    qsort(keys, m, sizeof(keys[0]), cmp_u64); /* by (freq, symbol) ascending */
    for (unsigned i = 0; i < m; i++) syms[i] = (uint16_t)keys[i];
    uint64_t w[2 * GD_NUM_LITLEN_SYMS];
    uint16_t parent[2 * GD_NUM_LITLEN_SYMS];
    uint8_t depth[2 * GD_NUM_LITLEN_SYMS];
    for (unsigned i = 0; i < m; i++) w[i] = freq[syms[i]];
    unsigned leaf = 0, node = m, next = m;
    while (next < 2 * m - 1) {
        unsigned pick[2];
        for (int k = 0; k < 2; k++) {
            if (leaf < m && (node >= next || w[leaf] <= w[node])) pick[k] = leaf++;
            else pick[k] = node++;
        }
        w[next] = w[pick[0]] + w[pick[1]];
        parent[pick[0]] = parent[pick[1]] = (uint16_t)next;
        next++;
    }
    depth[2 * m - 2] = 0;
    unsigned count[64] = {0};
    for (int i = (int)(2 * m) - 3; i >= 0; i--) depth[i] = depth[parent[i]] + 1;
    for (unsigned i = 0; i < m; i++) count[depth[i] > max_len ? max_len : depth[i]]++;
    /* Clamping leaves to max_len over-subscribes the code by `excess` units of 2^-max_len; each
     * step moves one leaf from the deepest non-full level down one level and hangs one clamped
     * leaf beside it, which removes exactly one unit. */
    uint64_t kraft = 0;
    for (unsigned l = 1; l <= max_len; l++) kraft += (uint64_t)count[l] << (max_len - l);
    while (kraft > (1ull << max_len)) {
        unsigned bits = max_len - 1;
        while (bits > 0 && count[bits] == 0) bits--;
        if (bits == 0 || count[max_len] == 0) break;
        count[bits]--;
        count[bits + 1] += 2;
        count[max_len]--;
        kraft--;
    }
    if (kraft != (1ull << max_len)) {
        /* Never expected; fall back to a complete flat code (m <= 288 fits in 9 bits). */
        unsigned l = 1;
        while ((1u << l) < m) l++;
        memset(count, 0, sizeof(count));
        count[l - 1] = (1u << l) - m;
        count[l] = m - count[l - 1];
    }
    /* longest lengths to the least frequent symbols */
    unsigned i = 0;
    for (unsigned l = max_len; l >= 1; l--)
        for (unsigned k = 0; k < count[l]; k++) lens[syms[i++]] = (uint8_t)l;
}

static unsigned reverse_bits(unsigned code, unsigned len)
{
    unsigned r = 0;
    for (unsigned i = 0; i < len; i++) {
        r = (r << 1) | (code & 1);
        code >>= 1;
    }
    return r;
}

static void make_codes(const uint8_t *lens, unsigned n, uint16_t *codes)
{
    unsigned count[GD_MAX_CODEWORD_LEN + 1] = {0}, next[GD_MAX_CODEWORD_LEN + 2];
    for (unsigned s = 0; s < n; s++) count[lens[s]]++;
    count[0] = 0;
    unsigned code = 0;
    for (unsigned l = 1; l <= GD_MAX_CODEWORD_LEN; l++) {
        code = (code + count[l - 1]) << 1;
        next[l] = code;
    }
    for (unsigned s = 0; s < n; s++)
        codes[s] = lens[s] ? (uint16_t)reverse_bits(next[lens[s]]++, lens[s]) : 0;
}

/* ------------------------------------------------------------------ match finding */

static inline uint32_t hash3(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
    return (v * 0x1E35A7BDu) >> (32 - HASH3_BITS);
}

static inline uint32_t hash4(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return (v * 0x1E35A7BDu) >> (32 - HASH4_BITS);
}

static inline unsigned match_len(const uint8_t *a, const uint8_t *b, unsigned start, unsigned max)
{
    unsigned n = start;
    while (n + 8 <= max) {
        uint64_t x, y;
        memcpy(&x, a + n, 8);
        memcpy(&y, b + n, 8);
        if (x != y) return n + ((unsigned)__builtin_ctzll(x ^ y) >> 3);
        n += 8;
    }
    while (n < max && a[n] == b[n]) n++;
    return n;
}

static void reset_hash(struct gdeflate_compressor *c)
{
    memset(c->head3, 0xff, sizeof(c->head3));
    memset(c->head4, 0xff, sizeof(c->head4));
}

/* The length-3 candidate: only the latest position with the same 3-byte hash. */
static inline unsigned len3_match(struct gdeflate_compressor *c, const uint8_t *in, unsigned pos, unsigned n,
                                  unsigned *dist)
{
    if (pos + 3 > n) return 0;
    uint32_t h = hash3(in + pos);
    int32_t cand = c->head3[h];
    c->head3[h] = (int32_t)pos;
    if (cand == NIL || memcmp(in + cand, in + pos, 3) != 0) return 0;
    *dist = pos - (unsigned)cand;
    return 3;
}

/*
 * Hash chains (greedy and lazy levels): walk up to `depth` earlier positions with the same 4-byte
 * hash; report every strictly longer match (increasing lengths) and insert pos.
 */
static unsigned chain_matches(struct gdeflate_compressor *c, const uint8_t *in, unsigned pos, unsigned n,
                              unsigned depth, unsigned nice, uint32_t *lens_out, uint32_t *dists_out,
                              unsigned max_out)
{
    unsigned found = 0, best = 2, d3;
    if (len3_match(c, in, pos, n, &d3)) {
        lens_out[found] = 3;
        dists_out[found++] = d3;
        best = 3;
    }
    if (pos + 4 > n) return found;
    unsigned max = n - pos > GD_MAX_MATCH ? GD_MAX_MATCH : n - pos;
    if (nice > max) nice = max;
    uint32_t h = hash4(in + pos);
    int32_t cand = c->head4[h];
    c->prev[pos] = cand;
    c->head4[h] = (int32_t)pos;
    const uint8_t *cur = in + pos;
    while (cand != NIL && depth--) {
        const uint8_t *m = in + cand;
        if (m[best] == cur[best] && memcmp(m, cur, 4) == 0) {
            unsigned l = match_len(cur, m, 4, max);
            if (l > best) {
                best = l;
                if (found == max_out) found--; /* keep the longest when the list is full */
                lens_out[found] = l;
                dists_out[found++] = pos - (unsigned)cand;
                if (l >= nice) break;
            }
        }
        cand = c->prev[cand];
    }
    return found;
}

static inline void chain_insert(struct gdeflate_compressor *c, const uint8_t *in, unsigned pos, unsigned n)
{
    if (pos + 3 <= n) c->head3[hash3(in + pos)] = (int32_t)pos;
    if (pos + 4 > n) return;
    uint32_t h = hash4(in + pos);
    c->prev[pos] = c->head4[h];
    c->head4[h] = (int32_t)pos;
}

/*
 * Binary trees (near-optimal levels): per 4-byte hash, earlier positions form a tree ordered by
 * the bytes that follow them, so a bounded walk finds the longest matches rather than merely the
 * most recent ones. Inserting pos re-roots the tree at pos (the LZMA/libdeflate scheme); with
 * record = 0 it only inserts (positions covered by a long match).
 */
static unsigned bt_matches(struct gdeflate_compressor *c, const uint8_t *in, unsigned pos, unsigned n,
                           unsigned depth, unsigned nice, uint32_t *lens_out, uint32_t *dists_out,
                           unsigned max_out, int record)
{
    unsigned found = 0, best = 2, d3;
    if (record && len3_match(c, in, pos, n, &d3)) {
        lens_out[found] = 3;
        dists_out[found++] = d3;
        best = 3;
    } else if (!record && pos + 3 <= n) {
        c->head3[hash3(in + pos)] = (int32_t)pos;
    }
    if (pos + 4 > n) return found;
    unsigned max = n - pos > GD_MAX_MATCH ? GD_MAX_MATCH : n - pos;
    if (nice > max) nice = max;
    if (!record) max = nice; /* only inserting: never extend a match past nice (runs stay linear) */
    uint32_t h = hash4(in + pos);
    int32_t node = c->head4[h];
    c->head4[h] = (int32_t)pos;
    int32_t *pending_lt = &c->child[2 * pos];
    int32_t *pending_gt = &c->child[2 * pos + 1];
    unsigned best_lt = 0, best_gt = 0, len = 0;
    const uint8_t *cur = in + pos;
    while (node != NIL) {
        const uint8_t *m = in + node;
        if (m[len] == cur[len]) {
            len = match_len(cur, m, len + 1, max);
            if (len > best) {
                best = len;
                if (record && max_out) {
                    if (found == max_out) found--;
                    lens_out[found] = len;
                    dists_out[found++] = pos - (unsigned)node;
                }
            }
            if (len >= nice) {
                /* the node matches as far as we look: its subtrees become pos's */
                *pending_lt = c->child[2 * node];
                *pending_gt = c->child[2 * node + 1];
                return found;
            }
        }
        if (m[len] < cur[len]) {
            *pending_lt = node;
            pending_lt = &c->child[2 * node + 1];
            node = *pending_lt;
            best_lt = len;
            if (best_gt < len) len = best_gt;
        } else {
            *pending_gt = node;
            pending_gt = &c->child[2 * node];
            node = *pending_gt;
            best_gt = len;
            if (best_lt < len) len = best_lt;
        }
        if (--depth == 0) break;
    }
    *pending_lt = NIL;
    *pending_gt = NIL;
    return found;
}

/* Greedy (lazy = 0) or one-step lazy parse. Returns the token count. */
static unsigned parse_hash_chain(struct gdeflate_compressor *c, const uint8_t *in, unsigned n, int lazy)
{
    struct token *t = c->tokens;
    unsigned nt = 0, pos = 0;
    uint32_t lens[MAX_CACHED_PER_POS], dists[MAX_CACHED_PER_POS];
    reset_hash(c);
    unsigned cur_len = 0, cur_dist = 0;
    int have = 0;
    while (pos < n) {
        if (!have) {
            unsigned k = chain_matches(c, in, pos, n, c->p.depth, c->p.nice, lens, dists, MAX_CACHED_PER_POS);
            cur_len = k ? lens[k - 1] : 0;
            cur_dist = k ? dists[k - 1] : 0;
            if (cur_len == 3 && cur_dist > 8192) cur_len = 0;
        }
        have = 0;
        if (cur_len >= GD_MIN_MATCH) {
            if (lazy && cur_len < c->p.nice && pos + 1 < n) {
                unsigned k = chain_matches(c, in, pos + 1, n, c->p.depth, c->p.nice, lens, dists, MAX_CACHED_PER_POS);
                unsigned nl = k ? lens[k - 1] : 0, nd = k ? dists[k - 1] : 0;
                if (nl == 3 && nd > 8192) nl = 0;
                if (nl > cur_len) {
                    t[nt++] = (struct token){0, in[pos], 0};
                    pos++;
                    cur_len = nl;
                    cur_dist = nd;
                    have = 1;
                    continue;
                }
                /* pos+1 is already inserted; insert the rest of the match */
                t[nt++] = (struct token){(uint16_t)(cur_len - 2), 0, cur_dist};
                for (unsigned q = pos + 2; q < pos + cur_len; q++) chain_insert(c, in, q, n);
                pos += cur_len;
                continue;
            }
            t[nt++] = (struct token){(uint16_t)(cur_len - 2), 0, cur_dist};
            for (unsigned q = pos + 1; q < pos + cur_len; q++) chain_insert(c, in, q, n);
            pos += cur_len;
        } else {
            t[nt++] = (struct token){0, in[pos], 0};
            pos++;
        }
    }
    return nt;
}

/* ------------------------------------------------------------------ near-optimal parse */

static void costs_from_lens(struct gdeflate_compressor *c, const uint8_t *litlen_lens, const uint8_t *dist_lens)
{
    for (unsigned s = 0; s < GD_NUM_LITLEN_SYMS; s++) {
        unsigned l = litlen_lens[s] ? litlen_lens[s] : 12;
        c->lit_cost[s] = l + (s > 256 && s <= 285 ? gd_length_extra[s - 257] : 0);
    }
    for (unsigned s = 0; s < GD_NUM_DIST_SYMS; s++) c->dist_cost[s] = (dist_lens[s] ? dist_lens[s] : 10) + gd_dist_extra[s];
}

static unsigned collect_matches(struct gdeflate_compressor *c, const uint8_t *in, unsigned n)
{
    uint32_t lens[MAX_CACHED_PER_POS], dists[MAX_CACHED_PER_POS];
    unsigned used = 0;
    reset_hash(c);
    unsigned pos = 0;
    while (pos < n) {
        c->cache_start[pos] = used;
        unsigned k = 0;
        if (used + MAX_CACHED_PER_POS <= MATCH_CACHE_SIZE)
            k = bt_matches(c, in, pos, n, c->p.depth, c->p.nice, lens, dists, MAX_CACHED_PER_POS, 1);
        else
            bt_matches(c, in, pos, n, c->p.depth, c->p.nice, lens, dists, 0, 0);
        for (unsigned i = 0; i < k; i++) c->cache[used++] = lens[i] | ((dists[i] - 1) << 16);
        if (k && lens[k - 1] >= c->p.nice) {
            /* A long match: take it whole, only index the positions it covers. */
            unsigned l = lens[k - 1];
            for (unsigned q = pos + 1; q < pos + l; q++) {
                c->cache_start[q] = used;
                bt_matches(c, in, q, n, c->p.depth, c->p.nice, lens, dists, 0, 0);
            }
            pos += l;
            continue;
        }
        pos++;
    }
    c->cache_start[n] = used;
    return used;
}

/* Shortest path over [start, end) with the current costs; tokens go to `out`. */
static unsigned parse_optimal_pass(struct gdeflate_compressor *c, const uint8_t *in, unsigned start, unsigned end,
                                   struct token *out)
{
    uint32_t *cost = c->cost;
    for (unsigned i = start + 1; i <= end; i++) cost[i] = UINT32_MAX;
    cost[start] = 0;
    uint32_t len_cost_small[259];
    for (unsigned l = 3; l <= 258; l++) len_cost_small[l] = c->lit_cost[len_sym(l)];
    uint32_t long_cost = c->lit_cost[285];
    for (unsigned i = start; i < end; i++) {
        uint32_t base = cost[i];
        uint32_t lc = base + c->lit_cost[in[i]];
        if (lc < cost[i + 1]) {
            cost[i + 1] = lc;
            c->from_len[i + 1] = 1;
        }
        unsigned prev_len = 2, room = end - i;
        for (unsigned k = c->cache_start[i]; k < c->cache_start[i + 1]; k++) {
            unsigned len = c->cache[k] & 0xffff, dist = (c->cache[k] >> 16) + 1;
            if (len > room) len = room; /* a block boundary cuts the match */
            if (len <= prev_len) break;
            uint32_t dc = base + c->dist_cost[dist_symbol(dist)];
            if (len >= c->p.nice || len > 258) {
                uint32_t mc = dc + (len >= 258 ? long_cost : len_cost_small[len]);
                if (mc < cost[i + len]) {
                    cost[i + len] = mc;
                    c->from_len[i + len] = len;
                    c->from_dist[i + len] = dist;
                }
                prev_len = len;
                continue;
            }
            for (unsigned l = prev_len + 1; l <= len; l++) {
                uint32_t mc = dc + len_cost_small[l];
                if (mc < cost[i + l]) {
                    cost[i + l] = mc;
                    c->from_len[i + l] = l;
                    c->from_dist[i + l] = dist;
                }
            }
            prev_len = len;
        }
    }
    /* Walk back from the end, then reverse into the token array. */
    unsigned nt = 0, pos = end;
    while (pos > start) {
        pos -= c->from_len[pos];
        nt++;
    }
    unsigned k = nt;
    pos = end;
    while (pos > start) {
        unsigned l = c->from_len[pos];
        pos -= l;
        k--;
        if (l == 1) out[k] = (struct token){0, in[pos], 0};
        else out[k] = (struct token){(uint16_t)(l - 2), 0, c->from_dist[pos + l]};
    }
    return nt;
}

static void count_freqs(const struct token *t, unsigned nt, uint32_t *lf, uint32_t *df);
static void build_lengths(const uint32_t *freq_in, unsigned n, unsigned max_len, uint8_t *lens);

/* Refine the parse of [start, end): costs from the current tokens' Huffman code, then a new
 * shortest path; `passes` times. `t`/`nt` hold the seed parse and receive the result. */
static unsigned refine(struct gdeflate_compressor *c, const uint8_t *in, unsigned start, unsigned end,
                       struct token *t, unsigned nt)
{
    uint32_t lf[GD_NUM_LITLEN_SYMS], df[GD_NUM_DIST_SYMS];
    uint8_t ll[GD_NUM_LITLEN_SYMS], dl[GD_NUM_DIST_SYMS];
    for (unsigned pass = 0; pass < c->p.passes; pass++) {
        count_freqs(t, nt, lf, df);
        build_lengths(lf, GD_NUM_LITLEN_SYMS - 2, GD_MAX_CODEWORD_LEN, ll);
        ll[286] = ll[287] = 0;
        build_lengths(df, GD_NUM_DIST_SYMS, GD_MAX_CODEWORD_LEN, dl);
        costs_from_lens(c, ll, dl);
        nt = parse_optimal_pass(c, in, start, end, t);
    }
    return nt;
}

/* ------------------------------------------------------------------ lane serializer */

struct lane_writer {
    uint64_t acc;
    unsigned nbits;
    unsigned sim_avail; /* bits the decoder would hold in this lane */
    uint32_t slots[4];  /* reserved word indexes not yet filled, oldest first */
    unsigned head, count;
};

struct tile_writer {
    struct lane_writer lanes[GD_LANES];
    uint8_t *out;
    size_t cap_words, nwords;
    int overflow;
};

static void tw_reserve(struct tile_writer *w, unsigned L)
{
    struct lane_writer *l = &w->lanes[L];
    if (w->nwords >= w->cap_words) {
        w->overflow = 1;
        return;
    }
    gd_store32le(w->out + 4 * w->nwords, 0);
    l->slots[(l->head + l->count) & 3] = (uint32_t)w->nwords++;
    l->count++;
}

static void tw_init(struct tile_writer *w, uint8_t *out, size_t out_avail)
{
    memset(w->lanes, 0, sizeof(w->lanes));
    w->out = out;
    w->cap_words = out_avail / 4;
    w->nwords = 0;
    w->overflow = 0;
    for (unsigned L = 0; L < GD_LANES; L++) {
        tw_reserve(w, L);
        w->lanes[L].sim_avail = 32;
    }
}

static inline void tw_put(struct tile_writer *w, unsigned L, uint32_t bits, unsigned n)
{
    struct lane_writer *l = &w->lanes[L];
    l->acc |= (uint64_t)bits << l->nbits;
    l->nbits += n;
    l->sim_avail -= n;
    if (l->nbits >= 32) {
        if (l->count == 0) {
            w->overflow = 1; /* cannot happen for a valid schedule */
            return;
        }
        gd_store32le(w->out + 4 * (size_t)l->slots[l->head], (uint32_t)l->acc);
        l->head = (l->head + 1) & 3;
        l->count--;
        l->acc >>= 32;
        l->nbits -= 32;
    }
}

/* The decoder's refill check: fewer than 32 bits held -> it loads the next word. */
static inline void tw_check(struct tile_writer *w, unsigned L)
{
    struct lane_writer *l = &w->lanes[L];
    if (l->sim_avail < 32) {
        tw_reserve(w, L);
        l->sim_avail += 32;
    }
}

static void tw_finish(struct tile_writer *w)
{
    for (unsigned L = 0; L < GD_LANES; L++) {
        struct lane_writer *l = &w->lanes[L];
        if (l->nbits > 0 && l->count > 0) {
            gd_store32le(w->out + 4 * (size_t)l->slots[l->head], (uint32_t)l->acc);
            l->head = (l->head + 1) & 3;
            l->count--;
            l->nbits = 0;
        } else if (l->nbits > 0) {
            w->overflow = 1;
        }
    }
}

static void write_stored_block(struct tile_writer *w, const uint8_t *in, unsigned len, int final)
{
    tw_put(w, 0, (uint32_t)final, 1);
    tw_put(w, 0, 0, 2);
    tw_check(w, 0);
    tw_put(w, 0, len, 16);
    for (unsigned k = 0; k < len; k++) {
        tw_put(w, k & 31, in[k], 8);
        tw_check(w, k & 31);
    }
    for (unsigned j = 0; j < GD_LANES; j++) tw_check(w, (len + j) & 31);
}

struct block_codes {
    uint8_t litlen_lens[GD_NUM_LITLEN_SYMS];
    uint16_t litlen_codes[GD_NUM_LITLEN_SYMS];
    uint8_t dist_lens[GD_NUM_DIST_SYMS];
    uint16_t dist_codes[GD_NUM_DIST_SYMS];
    /* dynamic header */
    unsigned hlit, hdist, hclen;
    uint8_t pre_lens[GD_NUM_PRECODE_SYMS];
    uint16_t pre_codes[GD_NUM_PRECODE_SYMS];
    uint16_t items[GD_NUM_LITLEN_SYMS + GD_NUM_DIST_SYMS]; /* precode symbol | extra value << 5 */
    unsigned nitems;
};

static void count_freqs(const struct token *t, unsigned nt, uint32_t *lf, uint32_t *df)
{
    memset(lf, 0, GD_NUM_LITLEN_SYMS * sizeof(uint32_t));
    memset(df, 0, GD_NUM_DIST_SYMS * sizeof(uint32_t));
    for (unsigned i = 0; i < nt; i++) {
        if (t[i].len_minus == 0) {
            lf[t[i].lit]++;
        } else {
            lf[len_sym(t[i].len_minus + 2u)]++;
            df[dist_symbol(t[i].dist)]++;
        }
    }
    lf[GD_END_OF_BLOCK]++;
}

static const uint8_t PRE_EXTRA[3] = {2, 3, 7};

/* Build dynamic codes and the run-length coded header; returns the block's size in bits. */
static uint64_t plan_dynamic(struct block_codes *bc, const uint32_t *lf, const uint32_t *df)
{
    uint32_t df2[GD_NUM_DIST_SYMS];
    memcpy(df2, df, sizeof(df2));
    build_lengths(lf, GD_NUM_LITLEN_SYMS - 2, GD_MAX_CODEWORD_LEN, bc->litlen_lens); /* never 286/287 */
    bc->litlen_lens[286] = bc->litlen_lens[287] = 0;
    build_lengths(df2, GD_NUM_DIST_SYMS, GD_MAX_CODEWORD_LEN, bc->dist_lens);
    make_codes(bc->litlen_lens, GD_NUM_LITLEN_SYMS, bc->litlen_codes);
    make_codes(bc->dist_lens, GD_NUM_DIST_SYMS, bc->dist_codes);

    unsigned hlit = GD_NUM_LITLEN_SYMS;
    while (hlit > 257 && bc->litlen_lens[hlit - 1] == 0) hlit--;
    unsigned hdist = GD_NUM_DIST_SYMS;
    while (hdist > 1 && bc->dist_lens[hdist - 1] == 0) hdist--;
    uint8_t all[GD_NUM_LITLEN_SYMS + GD_NUM_DIST_SYMS];
    memcpy(all, bc->litlen_lens, hlit);
    memcpy(all + hlit, bc->dist_lens, hdist);
    unsigned total = hlit + hdist, ni = 0;
    uint32_t pf[GD_NUM_PRECODE_SYMS] = {0};
    for (unsigned i = 0; i < total;) {
        unsigned v = all[i], run = 1;
        while (i + run < total && all[i + run] == v) run++;
        if (v == 0 && run >= 3) {
            unsigned r = run > 138 ? 138 : run;
            if (r >= 11) bc->items[ni++] = (uint16_t)(18 | ((r - 11) << 5)), pf[18]++;
            else bc->items[ni++] = (uint16_t)(17 | ((r - 3) << 5)), pf[17]++;
            i += r;
        } else if (v != 0 && run >= 4) {
            bc->items[ni++] = (uint16_t)v, pf[v]++;
            unsigned r = run - 1 > 6 ? 6 : run - 1;
            bc->items[ni++] = (uint16_t)(16 | ((r - 3) << 5)), pf[16]++;
            i += 1 + r;
        } else {
            bc->items[ni++] = (uint16_t)v, pf[v]++;
            i++;
        }
    }
    bc->nitems = ni;
    build_lengths(pf, GD_NUM_PRECODE_SYMS, GD_MAX_PRECODE_LEN, bc->pre_lens);
    make_codes(bc->pre_lens, GD_NUM_PRECODE_SYMS, bc->pre_codes);
    unsigned hclen = GD_NUM_PRECODE_SYMS;
    while (hclen > 4 && bc->pre_lens[gd_precode_order[hclen - 1]] == 0) hclen--;
    bc->hlit = hlit;
    bc->hdist = hdist;
    bc->hclen = hclen;

    uint64_t bits = 3 + 14 + 3 * hclen;
    for (unsigned s = 0; s < GD_NUM_PRECODE_SYMS; s++)
        bits += (uint64_t)pf[s] * bc->pre_lens[s];
    bits += (uint64_t)pf[16] * 2 + (uint64_t)pf[17] * 3 + (uint64_t)pf[18] * 7;
    for (unsigned s = 0; s < GD_NUM_LITLEN_SYMS; s++) {
        bits += (uint64_t)lf[s] * bc->litlen_lens[s];
        if (s > 256 && s <= 285) bits += (uint64_t)lf[s] * gd_length_extra[s - 257];
    }
    for (unsigned s = 0; s < GD_NUM_DIST_SYMS; s++) bits += (uint64_t)df[s] * (bc->dist_lens[s] + gd_dist_extra[s]);
    return bits;
}

static uint64_t plan_fixed(struct block_codes *bc, const uint32_t *lf, const uint32_t *df)
{
    gd_fixed_lens(bc->litlen_lens, bc->dist_lens);
    make_codes(bc->litlen_lens, GD_NUM_LITLEN_SYMS, bc->litlen_codes);
    make_codes(bc->dist_lens, GD_NUM_DIST_SYMS, bc->dist_codes);
    uint64_t bits = 3;
    for (unsigned s = 0; s < GD_NUM_LITLEN_SYMS; s++) {
        bits += (uint64_t)lf[s] * bc->litlen_lens[s];
        if (s > 256 && s <= 285) bits += (uint64_t)lf[s] * gd_length_extra[s - 257];
    }
    for (unsigned s = 0; s < GD_NUM_DIST_SYMS; s++) bits += (uint64_t)df[s] * (5u + gd_dist_extra[s]);
    return bits;
}

static inline void put_distance(struct tile_writer *w, const struct block_codes *bc, unsigned L, unsigned dist)
{
    unsigned ds = dist_symbol(dist);
    tw_put(w, L, bc->dist_codes[ds], bc->dist_lens[ds]);
    if (gd_dist_extra[ds]) tw_put(w, L, dist - gd_dist_base[ds], gd_dist_extra[ds]);
}

static void write_huffman_block(struct tile_writer *w, const struct block_codes *bc, int dynamic,
                                const struct token *t, unsigned nt, int final)
{
    tw_put(w, 0, (uint32_t)final, 1);
    tw_put(w, 0, dynamic ? 2u : 1u, 2);
    tw_check(w, 0);
    if (dynamic) {
        tw_put(w, 0, bc->hlit - 257, 5);
        tw_put(w, 0, bc->hdist - 1, 5);
        tw_put(w, 0, bc->hclen - 4, 4);
        tw_check(w, 0);
        for (unsigned i = 0; i < bc->hclen; i++) {
            tw_put(w, i, bc->pre_lens[gd_precode_order[i]], 3);
            tw_check(w, i);
        }
        unsigned L = 0;
        for (unsigned i = 0; i < bc->nitems; i++) {
            unsigned sym = bc->items[i] & 31, extra = bc->items[i] >> 5;
            tw_put(w, L, bc->pre_codes[sym], bc->pre_lens[sym]);
            if (sym >= 16) tw_put(w, L, extra, PRE_EXTRA[sym - 16]);
            tw_check(w, L);
            L = (L + 1) & 31;
        }
    }
    uint32_t pending_dist[GD_LANES];
    uint32_t pending = 0;
    unsigned L = 0, i = 0;
    for (;;) {
        if (pending & (1u << L)) {
            put_distance(w, bc, L, pending_dist[L]);
            pending &= ~(1u << L);
        } else if (i == nt) {
            tw_put(w, L, bc->litlen_codes[GD_END_OF_BLOCK], bc->litlen_lens[GD_END_OF_BLOCK]);
            break;
        } else if (t[i].len_minus == 0) {
            unsigned s = t[i].lit;
            tw_put(w, L, bc->litlen_codes[s], bc->litlen_lens[s]);
            i++;
        } else {
            unsigned len = t[i].len_minus + 2u, s = len_sym(len);
            tw_put(w, L, bc->litlen_codes[s], bc->litlen_lens[s]);
            unsigned extra = gd_length_extra[s - 257];
            if (extra) tw_put(w, L, len - gd_length_base[s - 257], extra);
            pending |= 1u << L;
            pending_dist[L] = t[i].dist;
            i++;
        }
        tw_check(w, L);
        L = (L + 1) & 31;
    }
    for (unsigned j = 0; j < GD_LANES; j++) {
        unsigned M = (L + j) & 31;
        if (pending & (1u << M)) put_distance(w, bc, M, pending_dist[M]);
        tw_check(w, M);
    }
}

/* ------------------------------------------------------------------ tiles */

static size_t stored_tile(const uint8_t *in, size_t n, uint8_t *out, size_t out_avail)
{
    struct tile_writer w;
    tw_init(&w, out, out_avail);
    size_t pos = 0;
    do {
        unsigned len = n - pos > GD_MAX_STORED_LEN ? GD_MAX_STORED_LEN : (unsigned)(n - pos);
        write_stored_block(&w, in + pos, len, pos + len == n);
        pos += len;
    } while (pos < n);
    tw_finish(&w);
    return w.overflow ? 0 : 4 * w.nwords;
}

static unsigned parse_tile(struct gdeflate_compressor *c, const uint8_t *in, unsigned n)
{
    if (c->p.strategy != OPTIMAL) return parse_hash_chain(c, in, n, c->p.strategy == LAZY);
    collect_matches(c, in, n);
    /* Seed costs from a greedy walk over the cached matches, then refine. */
    unsigned nt = 0;
    for (unsigned pos = 0; pos < n;) {
        unsigned a = c->cache_start[pos], b = c->cache_start[pos + 1];
        if (b > a) {
            unsigned len = c->cache[b - 1] & 0xffff, dist = (c->cache[b - 1] >> 16) + 1;
            c->tokens[nt++] = (struct token){(uint16_t)(len - 2), 0, dist};
            pos += len;
        } else {
            c->tokens[nt++] = (struct token){0, in[pos], 0};
            pos++;
        }
    }
    /* Blocks are planned on this greedy parse; gdeflate_compress_tile then refines each block
     * with costs from its own statistics (as the reference does per block). */
    return nt;
}

/* Best block type for tokens t[0, nt) covering `bytes` input bytes: fills dyn/fix, returns bits. */
static uint64_t block_cost(const struct token *t, unsigned nt, unsigned bytes, struct block_codes *dyn,
                           struct block_codes *fix, int *type)
{
    uint32_t lf[GD_NUM_LITLEN_SYMS], df[GD_NUM_DIST_SYMS];
    count_freqs(t, nt, lf, df);
    uint64_t d = plan_dynamic(dyn, lf, df);
    uint64_t f = plan_fixed(fix, lf, df);
    uint64_t st = 8 * (uint64_t)bytes + 19 * ((bytes + GD_MAX_STORED_LEN - 1) / GD_MAX_STORED_LEN);
    *type = d <= f ? 2 : 1;
    uint64_t best = d <= f ? d : f;
    if (st <= best) {
        *type = 0;
        best = st;
    }
    return best;
}

struct block_plan {
    unsigned start, end;    /* input bytes */
    unsigned tok0, tok1;    /* tokens of the tile-wide parse */
};

/* Top-down block splitting at SPLIT_UNIT boundaries: halve a range while the two halves,
 * each with its own Huffman code (header included), cost fewer bits than the whole. */
static void split_blocks(struct gdeflate_compressor *c, const unsigned *unit_tok, unsigned lo, unsigned hi,
                         unsigned n, struct block_plan *out, unsigned *count)
{
    static const struct block_codes zero_bc;
    struct block_codes dyn = zero_bc, fix = zero_bc;
    int type;
    unsigned a = lo * SPLIT_UNIT, b = hi * SPLIT_UNIT < n ? hi * SPLIT_UNIT : n;
    unsigned mid = (lo + hi) / 2;
    /* never split where one side would have no tokens (a long match spans the unit) */
    if (hi - lo >= 2 && *count + 2 <= MAX_BLOCKS && unit_tok[lo] < unit_tok[mid] && unit_tok[mid] < unit_tok[hi]) {
        unsigned m = mid * SPLIT_UNIT;
        uint64_t whole = block_cost(c->tokens + unit_tok[lo], unit_tok[hi] - unit_tok[lo], b - a, &dyn, &fix, &type);
        uint64_t left = block_cost(c->tokens + unit_tok[lo], unit_tok[mid] - unit_tok[lo], m - a, &dyn, &fix, &type);
        uint64_t right = block_cost(c->tokens + unit_tok[mid], unit_tok[hi] - unit_tok[mid], b - m, &dyn, &fix, &type);
        if (left + right < whole) {
            split_blocks(c, unit_tok, lo, mid, n, out, count);
            split_blocks(c, unit_tok, mid, hi, n, out, count);
            return;
        }
    }
    out[*count] = (struct block_plan){a, b, unit_tok[lo], unit_tok[hi]};
    (*count)++;
}

/* Plan blocks over the tile-wide parse: candidate boundaries are the first tokens starting at
 * or after each SPLIT_UNIT multiple, so every block holds whole tokens. */
static unsigned plan_blocks(struct gdeflate_compressor *c, unsigned n, unsigned nt, struct block_plan *blocks)
{
    unsigned units = (n + SPLIT_UNIT - 1) / SPLIT_UNIT;
    unsigned unit_tok[GDEFLATE_TILE_SIZE / SPLIT_UNIT + 2];
    /* token index of the first token starting at or after each unit boundary */
    unsigned pos = 0, u = 0;
    for (unsigned i = 0; i < nt && u <= units; i++) {
        while (u <= units && u * SPLIT_UNIT <= pos) unit_tok[u++] = i;
        pos += c->tokens[i].len_minus ? c->tokens[i].len_minus + 2u : 1u;
    }
    while (u <= units) unit_tok[u++] = nt;
    unsigned count = 0;
    split_blocks(c, unit_tok, 0, units, n, blocks, &count);
    /* Boundaries snap to where tokens start: block b covers input from its first token on. */
    pos = 0;
    unsigned bi = 0;
    for (unsigned i = 0; i < nt && bi < count; i++) {
        while (bi < count && blocks[bi].tok0 == i) blocks[bi++].start = pos;
        pos += c->tokens[i].len_minus ? c->tokens[i].len_minus + 2u : 1u;
    }
    for (unsigned k = 0; k + 1 < count; k++) blocks[k].end = blocks[k + 1].start;
    blocks[count - 1].end = n;
    return count;
}

static void write_block(struct tile_writer *w, const uint8_t *in, unsigned start, unsigned end,
                        const struct token *t, unsigned nt, int final)
{
    static const struct block_codes zero_bc;
    struct block_codes dyn = zero_bc, fix = zero_bc;
    int type;
    block_cost(t, nt, end - start, &dyn, &fix, &type);
    if (type == 0) {
        unsigned pos = start;
        do {
            unsigned len = end - pos > GD_MAX_STORED_LEN ? GD_MAX_STORED_LEN : end - pos;
            write_stored_block(w, in + pos, len, final && pos + len == end);
            pos += len;
        } while (pos < end);
    } else {
        write_huffman_block(w, type == 2 ? &dyn : &fix, type == 2, t, nt, final);
    }
}

enum gdeflate_result gdeflate_compress_tile(struct gdeflate_compressor *c, const void *in_v, size_t n, void *out_v,
                                            size_t out_avail, size_t *out_len)
{
    const uint8_t *in = in_v;
    uint8_t *out = out_v;
    if (out_len) *out_len = 0;
    if (c == NULL || in == NULL || out == NULL || n == 0 || n > GDEFLATE_TILE_SIZE) return GDEFLATE_BAD_ARGUMENT;
    size_t size = 0;
    if (c->p.strategy != STORED) {
        unsigned nt = parse_tile(c, in, (unsigned)n);
        struct block_plan blocks[MAX_BLOCKS];
        unsigned nb = 1;
        blocks[0] = (struct block_plan){0, (unsigned)n, 0, nt};
        if (c->level >= SPLIT_MIN_LEVEL) nb = plan_blocks(c, (unsigned)n, nt, blocks);
        struct tile_writer w;
        tw_init(&w, out, out_avail);
        for (unsigned k = 0; k < nb; k++) {
            const struct block_plan *bp = &blocks[k];
            const struct token *t = c->tokens + bp->tok0;
            unsigned bt = bp->tok1 - bp->tok0;
            if (c->p.strategy == OPTIMAL) {
                /* near-optimal parse of the block with costs from its own statistics */
                memcpy(c->tokens2, t, bt * sizeof(*t));
                bt = refine(c, in, bp->start, bp->end, c->tokens2, bt);
                t = c->tokens2;
            }
            write_block(&w, in, bp->start, bp->end, t, bt, k + 1 == nb);
        }
        tw_finish(&w);
        if (!w.overflow) size = 4 * w.nwords;
    }
    if (size == 0) size = stored_tile(in, n, out, out_avail);
    if (size == 0) return GDEFLATE_INSUFFICIENT_SPACE;
    if (out_len) *out_len = size;
    return GDEFLATE_SUCCESS;
}

struct gdeflate_compressor *gdeflate_alloc_compressor(int level)
{
    if (level < GDEFLATE_MIN_LEVEL || level > GDEFLATE_MAX_LEVEL) return NULL;
    struct gdeflate_compressor *c = malloc(sizeof(*c));
    if (c == NULL) return NULL;
    c->level = level;
    c->p = LEVELS[level];
    return c;
}

void gdeflate_free_compressor(struct gdeflate_compressor *c)
{
    free(c);
}

size_t gdeflate_tile_bound(void)
{
    return TILE_BOUND_BYTES;
}

size_t gdeflate_compress_bound(size_t n)
{
    if ((uint64_t)n > GDEFLATE_MAX_UNCOMPRESSED) return 0;
    size_t tiles = (n + GDEFLATE_TILE_SIZE - 1) / GDEFLATE_TILE_SIZE;
    return GDEFLATE_HEADER_SIZE + tiles * (4 + TILE_BOUND_BYTES);
}

/* ------------------------------------------------------------------ container */

static void write_header(uint8_t *out, size_t n, uint32_t tiles)
{
    out[0] = GDEFLATE_CODEC_ID;
    out[1] = GDEFLATE_MAGIC;
    gd_store16le(out + 2, (uint16_t)tiles);
    uint32_t last = tiles ? (uint32_t)(n % GDEFLATE_TILE_SIZE) : 0;
    gd_store32le(out + 4, 1u | (last << 2));
}

/* Tiles were compressed into fixed slots of `slot` bytes after the table: pack them, fill the table. */
static size_t pack_tiles(uint8_t *out, uint32_t tiles, const uint32_t *sizes, size_t slot)
{
    size_t data = GDEFLATE_HEADER_SIZE + 4 * (size_t)tiles, off = 0;
    for (uint32_t i = 0; i < tiles; i++) {
        if (i > 0) gd_store32le(out + GDEFLATE_HEADER_SIZE + 4 * (size_t)i, (uint32_t)off);
        memmove(out + data + off, out + data + (size_t)i * slot, sizes[i]);
        off += sizes[i];
    }
    gd_store32le(out + GDEFLATE_HEADER_SIZE, sizes[tiles - 1]);
    return data + off;
}

struct encode_job {
    int level;
    const uint8_t *in;
    size_t in_len;
    uint8_t *slots;
    uint32_t *sizes;
    uint32_t tiles;
    atomic_uint next_tile;
    atomic_int result;
};

static void *encode_worker(void *arg)
{
    struct encode_job *job = arg;
    struct gdeflate_compressor *c = gdeflate_alloc_compressor(job->level);
    if (c == NULL) {
        atomic_store(&job->result, GDEFLATE_NO_MEMORY);
        return NULL;
    }
    for (;;) {
        if (atomic_load_explicit(&job->result, memory_order_relaxed) != GDEFLATE_SUCCESS) break;
        unsigned i = atomic_fetch_add(&job->next_tile, 1);
        if (i >= job->tiles) break;
        size_t start = (size_t)i * GDEFLATE_TILE_SIZE;
        size_t len = job->in_len - start > GDEFLATE_TILE_SIZE ? GDEFLATE_TILE_SIZE : job->in_len - start;
        size_t got = 0;
        enum gdeflate_result r = gdeflate_compress_tile(c, job->in + start, len, job->slots + (size_t)i * TILE_BOUND_BYTES,
                                                        TILE_BOUND_BYTES, &got);
        if (r != GDEFLATE_SUCCESS) {
            atomic_store(&job->result, r);
            break;
        }
        job->sizes[i] = (uint32_t)got;
    }
    gdeflate_free_compressor(c);
    return NULL;
}

static enum gdeflate_result compress_container(int level, const uint8_t *in, size_t n, uint8_t *out, size_t out_avail,
                                               size_t *out_len, unsigned threads, struct gdeflate_compressor *single)
{
    if (out_len) *out_len = 0;
    if ((in == NULL && n) || out == NULL) return GDEFLATE_BAD_ARGUMENT;
    if ((uint64_t)n > GDEFLATE_MAX_UNCOMPRESSED) return GDEFLATE_BAD_ARGUMENT;
    uint32_t tiles = (uint32_t)((n + GDEFLATE_TILE_SIZE - 1) / GDEFLATE_TILE_SIZE);
    if (out_avail < GDEFLATE_HEADER_SIZE + 4 * (size_t)tiles) return GDEFLATE_INSUFFICIENT_SPACE;
    write_header(out, n, tiles);
    if (tiles == 0) {
        if (out_len) *out_len = GDEFLATE_HEADER_SIZE;
        return GDEFLATE_SUCCESS;
    }
    size_t need = gdeflate_compress_bound(n);
    uint8_t *work = out, *tmp = NULL;
    if (out_avail < need) {
        tmp = malloc(need);
        if (tmp == NULL) return GDEFLATE_NO_MEMORY;
        work = tmp;
    }
    uint32_t *sizes = malloc(sizeof(uint32_t) * tiles);
    if (sizes == NULL) {
        free(tmp);
        return GDEFLATE_NO_MEMORY;
    }
    struct encode_job job = {.level = level, .in = in, .in_len = n, .tiles = tiles, .sizes = sizes,
                             .slots = work + GDEFLATE_HEADER_SIZE + 4 * (size_t)tiles};
    atomic_init(&job.next_tile, 0);
    atomic_init(&job.result, GDEFLATE_SUCCESS);
    if (single != NULL) {
        for (uint32_t i = 0; i < tiles; i++) {
            size_t start = (size_t)i * GDEFLATE_TILE_SIZE, got = 0;
            size_t len = n - start > GDEFLATE_TILE_SIZE ? GDEFLATE_TILE_SIZE : n - start;
            enum gdeflate_result r =
                gdeflate_compress_tile(single, in + start, len, job.slots + (size_t)i * TILE_BOUND_BYTES, TILE_BOUND_BYTES, &got);
            if (r != GDEFLATE_SUCCESS) {
                atomic_store(&job.result, r);
                break;
            }
            sizes[i] = (uint32_t)got;
        }
    } else {
        gd_run_workers(encode_worker, &job, gdeflate_effective_threads(threads, tiles));
    }
    enum gdeflate_result r = (enum gdeflate_result)atomic_load(&job.result);
    if (r == GDEFLATE_SUCCESS) {
        if (tmp) write_header(tmp, n, tiles);
        size_t total = pack_tiles(work, tiles, sizes, TILE_BOUND_BYTES);
        if (tmp) {
            if (total > out_avail) r = GDEFLATE_INSUFFICIENT_SPACE;
            else memcpy(out, tmp, total);
        }
        if (r == GDEFLATE_SUCCESS && out_len) *out_len = total;
    }
    free(sizes);
    free(tmp);
    return r;
}

enum gdeflate_result gdeflate_compress(struct gdeflate_compressor *c, const void *in, size_t in_len, void *out,
                                       size_t out_avail, size_t *out_len)
{
    if (c == NULL) return GDEFLATE_BAD_ARGUMENT;
    return compress_container(c->level, in, in_len, out, out_avail, out_len, 1, c);
}

enum gdeflate_result gdeflate_compress_mt(int level, const void *in, size_t in_len, void *out, size_t out_avail,
                                          size_t *out_len, unsigned threads)
{
    if (level < GDEFLATE_MIN_LEVEL || level > GDEFLATE_MAX_LEVEL) return GDEFLATE_BAD_ARGUMENT;
    return compress_container(level, in, in_len, out, out_avail, out_len, threads, NULL);
}
