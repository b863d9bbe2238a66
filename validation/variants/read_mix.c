/* argv: FILE MIB. Reads FILE with read() 64 KiB at a time and, after every 4 MiB of
 * it, read-modify-writes every page of MIB MiB of private anonymous memory: a
 * working set kept hot beside a stream. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static char buf[65536];

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: read_mix FILE MIB\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    unsigned long size = strtoul(argv[2], NULL, 0) << 20;
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    long n, total = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        total += n;
        if (total % (4 << 20) == 0)
            for (unsigned long off = 0; off < size; off += page)
                p[off] += 1;
    }
    if (n < 0) { perror("read"); return 1; }
    printf("%ld\n", total);
    return 0;
}
