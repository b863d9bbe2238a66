/* Writes 16 MiB, then three times: MADV_FREE the first 4 MiB, replace the next 4 MiB
 * with a fresh mapping, and write every page again. */
#include <sys/mman.h>

int main(void) {
    size_t n = 16UL << 20, q = 4UL << 20;
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < n; i += 4096) p[i] = 1;
        munmap(p + q, q);
        if (mmap(p + q, q, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
            return 1;
        madvise(p, q, MADV_FREE);
    }
    return 0;
}
