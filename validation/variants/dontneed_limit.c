/* writes 48 MiB, drops every other MiB with MADV_DONTNEED, then writes it all again */
#include <sys/mman.h>
int main(void) {
    unsigned long n = 48UL << 20;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 1;
    for (unsigned long m = 0; m < n; m += 2UL << 20)
        if (madvise((char *)p + m, 1UL << 20, MADV_DONTNEED) != 0) return 1;
    for (unsigned long i = 0; i < n; i += 4096) p[i] += 2;
    return 0;
}
