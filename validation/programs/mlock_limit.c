/* Locked memory under a memory limit: 12 MiB locked with mlock (faulted in at
 * once), 2 MiB mapped MAP_LOCKED, 2 MiB locked on fault (mlock2 MLOCK_ONFAULT, half
 * of it touched), 4 MiB mapped after mlockall(MCL_FUTURE), then 40 MiB of other
 * anonymous memory written three times over. Locked pages are never swapped out,
 * so all the swapping falls on the 40 MiB. Then 8 MiB of the first range is
 * unlocked and the 40 MiB written once more: now the unlocked pages may go too,
 * and reading the whole first range last brings them back. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MIB (1 << 20)

static char *map(size_t n, int flags) {
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 0;
    }
    return p;
}

static void write_pages(char *p, size_t n, char v) {
    for (size_t i = 0; i < n; i += 4096) p[i] = v;
}

int main(void) {
    char *a = map(12 * MIB, 0);
    char *b = map(2 * MIB, MAP_LOCKED);
    char *c = map(2 * MIB, 0);
    if (!a || !b || !c) return 1;
    if (mlock(a, 12 * MIB) != 0) { perror("mlock"); return 1; }
    /* Not checked: QEMU 7.2 (the recorder) answers ENOSYS, and records what Linux
     * does. */
    syscall(SYS_mlock2, c, 2 * MIB, 1 /* MLOCK_ONFAULT */);
    write_pages(a, 12 * MIB, 1);
    write_pages(b, 2 * MIB, 2);
    write_pages(c, MIB, 3);
    if (mlockall(MCL_FUTURE) != 0) { perror("mlockall"); return 1; }
    char *d = map(4 * MIB, 0);
    if (munlockall() != 0) { perror("munlockall"); return 1; }
    if (!d) return 1;
    /* munlockall unlocked everything: lock the first three again. */
    if (mlock(a, 12 * MIB) != 0 || mlock(b, 2 * MIB) != 0) { perror("mlock"); return 1; }
    syscall(SYS_mlock2, c, 2 * MIB, 1);
    char *e = map(40 * MIB, 0);
    if (!e) return 1;
    for (int pass = 0; pass < 3; pass++) write_pages(e, 40 * MIB, pass + 4);
    if (munlock(a, 8 * MIB) != 0) { perror("munlock"); return 1; }
    write_pages(e, 40 * MIB, 9);
    volatile char sum = 0;
    for (size_t i = 0; i < 12 * MIB; i += 4096) sum += a[i];
    return sum == 1 ? 2 : 0; /* 3,072 pages of 1: sum wraps to 0 */
}
