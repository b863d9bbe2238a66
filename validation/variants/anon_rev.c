/* writes 48 MiB of anonymous memory, then reads it back twice in reverse page order */
#include <sys/mman.h>
int main(void) {
    unsigned long n = 48UL << 20;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (unsigned long i = 0; i < n; i += 4096) p[i + 7] = (char)i;
    unsigned long s = 0;
    for (int r = 0; r < 2; r++)
        for (long i = (long)n - 4096; i >= 0; i -= 4096) s += p[i + 7];
    return (int)(s & 1) * 0;
}
