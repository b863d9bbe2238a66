/* Under a 40 MiB limit: writes 16 MiB (A) and reads it twice more, writes 16 MiB (B),
 * lets A go with MADV_FREE but rewrites its last quarter, writes 16 MiB more (C), then
 * reads A, B and C once each. */
#include <sys/mman.h>

static volatile char sink;

static char *map(size_t n) {
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? 0 : p;
}

int main(void) {
    size_t n = 16UL << 20;
    char *a = map(n), *b = map(n), *c = map(n);
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < n; i += 4096) a[i] = 1;
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < n; i += 4096) sink = a[i];
    for (size_t i = 0; i < n; i += 4096) b[i] = 2;
    madvise(a, n, MADV_FREE);
    for (size_t i = n / 4 * 3; i < n; i += 4096) a[i] = 3;
    for (size_t i = 0; i < n; i += 4096) c[i] = 4;
    for (size_t i = 0; i < n; i += 4096) sink = a[i];
    for (size_t i = 0; i < n; i += 4096) sink = b[i];
    for (size_t i = 0; i < n; i += 4096) sink = c[i];
    return 0;
}
