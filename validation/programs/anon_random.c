/* 200,000 skewed random touches (read-modify-write of one byte) over 64 MiB of
 * private anonymous memory: the page is x*y/N for x, y uniform in [0, N), so low
 * pages are hot and high pages cold. A fixed-seed LCG makes every run the same. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (64UL << 20)
#define TOUCHES 200000

static uint64_t state = 12345;
static uint64_t next(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pages = SIZE / page;
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (int i = 0; i < TOUCHES; i++) {
        uint64_t x = next() % pages, y = next() % pages;
        p[(x * y / pages) * page] += 1;
    }
    return 0;
}
