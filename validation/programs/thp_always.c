/* Transparent huge pages without asking (run in THP mode always). Four kinds of
 * anonymous memory, none with madvise:
 *   - 64 MiB mmap (2 MiB-aligned, its length being a multiple of 2 MiB), every 4 KiB
 *     page written: 32 huge pages;
 *   - malloc(24 MiB): glibc maps 24 MiB + 4 KiB, not aligned; the mapping lands just
 *     below the 64 MiB one, so its top 24 MiB are 12 whole huge pages and its lowest
 *     page (malloc's header) a base page; every page written;
 *   - a fresh 8 MiB mmap only read, every page: 4 faults that map the huge zero page
 *     (thp_zero_page_alloc counts the zero page's allocation, at most 1: it is shared
 *     by the whole machine until reclaim, or drop_caches, frees it);
 *   - MADV_DONTNEED of the upper half (1 MiB) of huge page 3 of the 64 MiB: the
 *     mapping is split, then its first page is written again (no fault).
 * Linux 6.18, THP always: thp_fault_alloc 44, thp_split_pmd 1, thp_zero_page_alloc 1,
 * about 100 minor faults; THP madvise or never: no huge pages, about 24,625. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE (2UL << 20)
#define SIZE (64UL << 20)
#define MALLOC_SIZE (24UL << 20)
#define READ_SIZE (8UL << 20)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (unsigned long off = 0; off < SIZE; off += page)
        p[off] = 1;

    volatile char *m = malloc(MALLOC_SIZE);
    if (!m) { perror("malloc"); return 1; }
    for (unsigned long off = 0; off < MALLOC_SIZE; off += page)
        m[off] = 1;

    volatile char *r = mmap(NULL, READ_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) { perror("mmap"); return 1; }
    unsigned sum = 0;
    for (unsigned long off = 0; off < READ_SIZE; off += page)
        sum += r[off];

    if (madvise((void *)(p + 3 * HUGE + HUGE / 2), HUGE / 2, MADV_DONTNEED) != 0) { perror("madvise"); return 1; }
    p[3 * HUGE] = 2;
    return sum != 0 || m[0] != 1;
}
