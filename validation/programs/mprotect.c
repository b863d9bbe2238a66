/* Maps 8 MiB read-write and writes every page; makes it read-only and reads every
 * page; makes it read-write again and writes every page. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (8UL << 20)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (unsigned long off = 0; off < SIZE; off += page)
        p[off] = 1;
    if (mprotect((void *)p, SIZE, PROT_READ) != 0) { perror("mprotect"); return 1; }
    unsigned sum = 0;
    for (unsigned long off = 0; off < SIZE; off += page)
        sum += p[off];
    if (mprotect((void *)p, SIZE, PROT_READ | PROT_WRITE) != 0) { perror("mprotect"); return 1; }
    for (unsigned long off = 0; off < SIZE; off += page)
        p[off] = 2;
    return sum != SIZE / page;
}
