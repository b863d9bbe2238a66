/* argv: MIB PASSES. Read-modify-writes one byte in every page of MIB MiB of private
 * anonymous memory, PASSES times over, in address order. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: anon_rmw MIB PASSES\n"); return 2; }
    unsigned long size = strtoul(argv[1], NULL, 0) << 20;
    int passes = atoi(argv[2]);
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (int pass = 0; pass < passes; pass++)
        for (unsigned long off = 0; off < size; off += page)
            p[off] += 1;
    return 0;
}
