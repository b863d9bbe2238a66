/* Read faults, then writes, on memory advised MADV_HUGEPAGE (run in THP mode
 * madvise). Maps 16 MiB of private anonymous memory (2 MiB-aligned), madvise
 * MADV_HUGEPAGE, reads every 4 KiB page: one fault per 2 MiB, each mapping the
 * shared huge zero page. Then writes every page: the first write in each 2 MiB
 * faults once more, and Linux 6.18 puts a fresh huge page in the zero page's place
 * (no split; older kernels split the mapping and copied a base page). Then the same
 * over a second 16 MiB mapping, reading only its even 2 MiB ranges first.
 * Linux 6.18, THP madvise (and always): thp_fault_alloc 16, thp_split_pmd 0,
 * thp_zero_page_alloc 1 (the huge zero page is shared by the whole machine; the
 * harness's drop_caches frees it before each run), about 77 minor faults; THP never:
 * about 14,380. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE (2UL << 20)
#define SIZE (16UL << 20)

static volatile char *map(void) {
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return NULL; }
    if (madvise((void *)p, SIZE, MADV_HUGEPAGE) != 0) { perror("madvise"); return NULL; }
    return p;
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    unsigned sum = 0;
    volatile char *p = map();
    if (!p) return 1;
    for (unsigned long off = 0; off < SIZE; off += page)
        sum += p[off];
    for (unsigned long off = 0; off < SIZE; off += page)
        p[off] = 1;

    volatile char *q = map();
    if (!q) return 1;
    for (unsigned long off = 0; off < SIZE; off += page)
        if ((off / HUGE) % 2 == 0)
            sum += q[off];
    for (unsigned long off = 0; off < SIZE; off += page)
        q[off] = 1;
    return sum != 0;
}
