/* MADV_NOHUGEPAGE on part of a mapping (run in THP mode always). Maps 32 MiB of
 * private anonymous memory (2 MiB-aligned), MADV_NOHUGEPAGE on [3 MiB, 9 MiB) (not
 * on 2 MiB boundaries), then writes every 4 KiB page. A huge page needs a whole
 * 2 MiB-aligned range inside one area that allows it: [0, 2 MiB) and [10 MiB, 32 MiB)
 * get 1 + 11 huge pages; [2 MiB, 10 MiB) is 2048 base pages (1 MiB of it beside the
 * advice, in areas that would allow huge pages but are too small for one).
 * Linux 6.18, THP always: thp_fault_alloc 12, thp_split_pmd 0, about 2,110 minor
 * faults; THP madvise or never: no huge pages, about 8,240. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1UL << 20)
#define SIZE (32 * MIB)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    if (madvise((void *)(p + 3 * MIB), 6 * MIB, MADV_NOHUGEPAGE) != 0) { perror("madvise"); return 1; }
    for (unsigned long off = 0; off < SIZE; off += page)
        p[off] = 1;
    return 0;
}
