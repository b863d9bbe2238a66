/* argv: FILE PASSES. Maps FILE privately and read-only and reads one byte of every
 * page, PASSES times over. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: file_reread FILE PASSES\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    int passes = atoi(argv[2]);
    struct stat st;
    if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    long sum = 0;
    for (int pass = 0; pass < passes; pass++)
        for (off_t off = 0; off < st.st_size; off += page)
            sum += p[off];
    printf("%ld\n", sum);
    return 0;
}
