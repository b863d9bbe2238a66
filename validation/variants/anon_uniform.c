/* 150,000 uniform random read-modify-writes over 48 MiB of anonymous memory (fixed-seed LCG) */
#include <stdint.h>
#include <sys/mman.h>
static uint64_t st = 777;
static uint64_t nx(void) { st = st * 6364136223846793005ULL + 1442695040888963407ULL; return st >> 33; }
int main(void) {
    unsigned long n = 48UL << 20, pages = n / 4096;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (int i = 0; i < 150000; i++) p[(nx() % pages) * 4096 + 100] += 1;
    return 0;
}
