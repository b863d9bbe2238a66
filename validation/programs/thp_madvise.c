/* Transparent huge pages asked for with madvise (run in THP mode madvise). Maps
 * exactly 64 MiB of private anonymous memory, so Linux (6.7+) places it on a 2 MiB
 * boundary; MADV_HUGEPAGE; writes every 4 KiB page: one fault and one huge page per
 * 2 MiB. Then splits three of the 32 huge pages' mappings into base pages:
 *   - munmap of one 4 KiB page inside huge page 2,
 *   - mprotect(PROT_READ) of one page inside huge page 5,
 *   - a forked child writes one byte of huge page 9 (the page is shared with the
 *     parent, so the child's mapping is split and it copies a 4 KiB page) and exits;
 * the parent waits, then reads every page still mapped (no faults).
 * Linux 6.18, THP madvise (and always): thp_fault_alloc 32, thp_split_pmd 3,
 * thp_split_page 0, about 110 minor faults (the child's included). THP never: no huge
 * pages, about 16,460 minor faults. Exit status 2 if the mapping is not 2 MiB-aligned. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define HUGE (2UL << 20)
#define SIZE (64UL << 20)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    if (madvise((void *)p, SIZE, MADV_HUGEPAGE) != 0) { perror("madvise"); return 1; }
    for (unsigned long off = 0; off < SIZE; off += page)
        p[off] = 1;

    unsigned long hole = 2 * HUGE + 5 * page;
    if (munmap((void *)(p + hole), page) != 0) { perror("munmap"); return 1; }
    if (mprotect((void *)(p + 5 * HUGE + 7 * page), page, PROT_READ) != 0) { perror("mprotect"); return 1; }

    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        p[9 * HUGE + 3 * page] = 2;
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;

    unsigned long sum = 0;
    for (unsigned long off = 0; off < SIZE; off += page)
        if (off != hole)
            sum += p[off];
    if (sum != SIZE / page - 1)
        return 1;
    return (uintptr_t)p % HUGE ? 2 : 0;
}
