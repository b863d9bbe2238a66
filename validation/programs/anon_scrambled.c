/* Writes one byte in every page of 64 MiB of private anonymous memory in a scrambled
 * order (a stride prime to the page count), then reads every page in address order.
 * Under a 32 MiB limit the pages go to swap in the scrambled order, so the slots
 * around a fault hold pages far from it: how swap readahead picks its pages decides
 * the major faults. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (64UL << 20)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    unsigned long pages = SIZE / page;
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (unsigned long i = 0; i < pages; i++)
        p[(i * 1031 % pages) * page] = (char)(i | 1);
    long sum = 0;
    for (unsigned long i = 0; i < pages; i++)
        sum += p[i * page];
    printf("%ld\n", sum);
    return 0;
}
