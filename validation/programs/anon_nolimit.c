/* Reads every page of 16 MiB of private anonymous memory (the shared zero page),
 * then writes every page (a fresh page each). Meant to run without a limit. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (16UL << 20)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    unsigned sum = 0;
    for (unsigned long off = 0; off < SIZE; off += page)
        sum += p[off];
    for (unsigned long off = 0; off < SIZE; off += page)
        p[off] = 1;
    return sum != 0;
}
