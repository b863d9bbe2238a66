/* 4,000 rounds of free-then-malloc in 64 slots chosen by a fixed-seed LCG. Sizes
 * alternate between small ones (16 B to 4 KiB, from the brk heap) and large ones
 * (64 KiB to 512 KiB, across glibc's 128 KiB mmap threshold). Each new block gets
 * one byte written in each of its pages. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define SLOTS 64
#define ROUNDS 4000

static uint64_t state = 42;
static uint64_t next(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
}

int main(void) {
    static char *slot[SLOTS];
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < ROUNDS; i++) {
        int s = next() % SLOTS;
        free(slot[s]);
        size_t size = (i & 1) ? 16 + next() % 4081 : (64 << 10) + next() % (448 << 10);
        char *b = malloc(size);
        if (!b) return 1;
        for (size_t off = 0; off < size; off += page)
            ((volatile char *)b)[off] = (char)i;
        ((volatile char *)b)[size - 1] = (char)i;
        slot[s] = b;
    }
    for (int s = 0; s < SLOTS; s++)
        free(slot[s]);
    return 0;
}
