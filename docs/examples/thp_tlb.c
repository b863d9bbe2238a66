/* Reads 8 bytes at random 4 KiB pages of two 64 MiB arrays, 100,000 times each:
 * one advised MADV_HUGEPAGE, one not. Under THP never neither gets huge pages, under
 * madvise the first does, under always both: the TLB reach, and so the walks, differ. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define SIZE (64UL << 20)
#define PAGES (SIZE >> 12)

static char *area(int advise) {
    /* 2 MiB more, to start on a 2 MiB boundary. */
    char *p = mmap(0, SIZE + (2UL << 20), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    p = (char *)(((uintptr_t)p + (2UL << 20) - 1) & ~((2UL << 20) - 1));
    if (advise)
        madvise(p, SIZE, MADV_HUGEPAGE);
    for (unsigned long i = 0; i < SIZE; i += 4096)
        p[i] = 1;
    return p;
}

int main(void) {
    char *a = area(1), *b = area(0);
    if (!a || !b)
        return 1;
    uint64_t x = 12345, sum = 0;
    for (int i = 0; i < 100000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        sum += a[((x >> 33) % PAGES) << 12];
        sum += b[((x >> 17) % PAGES) << 12];
    }
    return sum == 0;
}
