/* grows an anonymous mapping with mremap from 1 MiB to 64 MiB, doubling and writing
 * each new part, then reads all of it */
#define _GNU_SOURCE
#include <sys/mman.h>
int main(void) {
    unsigned long n = 1UL << 20, s = 0;
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 1;
    while (n < (64UL << 20)) {
        char *q = mremap(p, n, 2 * n, MREMAP_MAYMOVE);
        if (q == MAP_FAILED) return 1;
        p = q;
        for (unsigned long i = n; i < 2 * n; i += 4096) p[i] = 2;
        n *= 2;
    }
    for (unsigned long i = 0; i < n; i += 4096) s += ((volatile char *)p)[i];
    return s == 1;
}
