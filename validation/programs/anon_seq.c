/* Writes one byte in every page of 64 MiB of private anonymous memory, three times
 * over, in address order. Under a 32 MiB limit every pass after the first swaps. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (64UL << 20)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (int pass = 0; pass < 3; pass++)
        for (unsigned long off = 0; off < SIZE; off += page)
            p[off] = (char)(pass + 1);
    return 0;
}
