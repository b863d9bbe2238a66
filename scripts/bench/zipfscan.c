/* Writes a synthetic page-reference stream in libCacheSim's oracleGeneral format: packed
 * little-endian 24-byte records (u32 time from 1, u64 page number, u32 size 4096, i64
 * 1-based index of the next reference to the same page or -1).
 *
 * Of the references, (1 - SCAN) are Zipf(ALPHA) over PAGES pages with shuffled ranks, and
 * SCAN continue a sequential scan of 4096 pages from a random start (a new one when a scan
 * ends). Deterministic: the same arguments give the same bytes.
 *
 *   zipfscan OUT REFS PAGES [ALPHA=0.9] [SCAN=0.15] [SEED=1]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;
static uint64_t next_random(void) { /* xorshift64 */
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}
static double uniform(void) { return (double)(next_random() >> 11) / (double)(1ULL << 53); }

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUT REFS PAGES [ALPHA] [SCAN] [SEED]\n", argv[0]);
        return 2;
    }
    const char *out = argv[1];
    uint64_t refs = strtoull(argv[2], NULL, 10), pages = strtoull(argv[3], NULL, 10);
    double alpha = argc > 4 ? atof(argv[4]) : 0.9, scan = argc > 5 ? atof(argv[5]) : 0.15;
    state = argc > 6 ? strtoull(argv[6], NULL, 10) : 1;
    if (state == 0) state = 1;
    if (refs == 0 || pages == 0 || refs >= UINT32_MAX || scan < 0 || scan > 1) {
        fprintf(stderr, "zipfscan: need 0 < REFS < 2^32, PAGES > 0, 0 <= SCAN <= 1\n");
        return 2;
    }
    double *cdf = malloc(pages * sizeof *cdf);
    uint64_t *perm = malloc(pages * sizeof *perm), *page = malloc(refs * sizeof *page);
    int64_t *seen = malloc(pages * sizeof *seen);
    if (!cdf || !perm || !page || !seen) { perror("zipfscan"); return 1; }
    double sum = 0;
    for (uint64_t r = 0; r < pages; r++) cdf[r] = sum += 1.0 / pow((double)(r + 1), alpha);
    for (uint64_t i = 0; i < pages; i++) perm[i] = i;
    for (uint64_t i = pages - 1; i > 0; i--) {
        uint64_t j = next_random() % (i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    uint64_t pos = 0, left = 0;
    for (uint64_t t = 0; t < refs; t++) {
        if (uniform() < scan) {
            if (left == 0) pos = next_random() % pages, left = 4096;
            page[t] = pos, pos = (pos + 1) % pages, left--;
        } else {
            double u = uniform() * sum;
            uint64_t lo = 0, hi = pages - 1; /* first rank whose cdf >= u */
            while (lo < hi) {
                uint64_t mid = (lo + hi) / 2;
                if (cdf[mid] < u) lo = mid + 1; else hi = mid;
            }
            page[t] = perm[lo];
        }
    }
    FILE *f = fopen(out, "wb");
    if (!f) { perror(out); return 1; }
    for (uint64_t i = 0; i < pages; i++) seen[i] = -1;
    int64_t *next = (int64_t *)cdf; /* reuse: one i64 per reference needs refs slots */
    if (refs > pages) next = malloc(refs * sizeof *next);
    if (!next) { perror("zipfscan"); return 1; }
    for (uint64_t t = refs; t-- > 0;) next[t] = seen[page[t]], seen[page[t]] = (int64_t)t + 1;
    for (uint64_t t = 0; t < refs; t++) {
        unsigned char rec[24];
        uint32_t time = (uint32_t)(t + 1), size = 4096;
        memcpy(rec, &time, 4), memcpy(rec + 4, &page[t], 8), memcpy(rec + 12, &size, 4);
        memcpy(rec + 16, &next[t], 8);
        fwrite(rec, 1, 24, f);
    }
    if (fclose(f) != 0) { perror(out); return 1; }
    return 0;
}
