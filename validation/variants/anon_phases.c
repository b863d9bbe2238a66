/* 64 MiB: write every page, touch every 4th page, then read every page; a 16 MiB hot
 * set is touched between the phases */
#include <sys/mman.h>
int main(void) {
    unsigned long n = 64UL << 20, h = 16UL << 20;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    volatile char *q = mmap(0, h, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || q == MAP_FAILED) return 1;
    unsigned long s = 0;
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 1;
    for (unsigned long i = 0; i < h; i += 4096) q[i] = 2;
    for (unsigned long i = 0; i < n; i += 4 * 4096) p[i] += 1;
    for (unsigned long i = 0; i < h; i += 4096) q[i] += 1;
    for (unsigned long i = 0; i < n; i += 4096) s += p[i];
    for (unsigned long i = 0; i < h; i += 4096) s += q[i];
    return (int)(s == 12345);
}
