/* Three rounds of: write every page of 16 MiB of private anonymous memory, then
 * madvise(MADV_DONTNEED) it all, so the next round faults in fresh zeroed pages. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (16UL << 20)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (int round = 0; round < 3; round++) {
        for (unsigned long off = 0; off < SIZE; off += page) {
            if (p[off] != 0) return 1;
            p[off] = 1;
        }
        if (madvise((void *)p, SIZE, MADV_DONTNEED) != 0) { perror("madvise"); return 1; }
    }
    return 0;
}
