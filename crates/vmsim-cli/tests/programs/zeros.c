/* Writes one byte of every page of 16 MiB of anonymous memory with argv[1] (0 or 1),
 * twice, then frees the first half with MADV_DONTNEED and writes it again with 1.
 * Then grows the heap by 1 MiB with sbrk, writes it with argv[1], gives it back by
 * lowering the break (as malloc trims its heap), grows it again and writes it
 * with 1: pages that hold zeros again. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int v = argc > 1 ? atoi(argv[1]) : 0;
    size_t n = 16UL << 20;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < n; i += 4096) p[i] = (char)v;
    madvise((void *)p, n / 2, MADV_DONTNEED);
    for (size_t i = 0; i < n / 2; i += 4096) p[i] = 1;
    intptr_t h = 1 << 20;
    char *top = sbrk(0);
    /* Whole pages from the next page boundary. */
    volatile char *b = (char *)(((uintptr_t)top + 4095) & ~(uintptr_t)4095);
    if (sbrk((b - top) + h) == (void *)-1) return 1;
    for (intptr_t i = 0; i < h; i += 4096) b[i] = (char)v;
    if (sbrk(-h) == (void *)-1 || sbrk(h) == (void *)-1) return 1;
    for (intptr_t i = 0; i < h; i += 4096) b[i] = 1;
    return 0;
}
