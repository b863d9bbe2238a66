/* Writes one byte of every page of 16 MiB of anonymous memory with argv[1] (0 or 1),
 * twice, then frees the first half with MADV_DONTNEED and writes it again with 1. */
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    int v = argc > 1 ? atoi(argv[1]) : 0;
    size_t n = 16UL << 20;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < n; i += 4096) p[i] = (char)v;
    madvise((void *)p, n / 2, MADV_DONTNEED);
    for (size_t i = 0; i < n / 2; i += 4096) p[i] = 1;
    return 0;
}
