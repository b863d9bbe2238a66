/* argv: MIB TOUCHES. Writes every page of MIB MiB of private anonymous memory, then
 * read-modify-writes TOUCHES skewed random pages (x*y/N for x, y uniform in [0, N):
 * low pages hot, high pages cold). A fixed-seed LCG makes every run the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t state = 777;
static uint64_t next(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: anon_skew MIB TOUCHES\n"); return 2; }
    unsigned long size = strtoul(argv[1], NULL, 0) << 20;
    long touches = atol(argv[2]);
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pages = size / page;
    volatile char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (unsigned long off = 0; off < size; off += page)
        p[off] = 1;
    for (long i = 0; i < touches; i++) {
        uint64_t x = next() % pages, y = next() % pages;
        p[(x * y / pages) * page] += 1;
    }
    return 0;
}
