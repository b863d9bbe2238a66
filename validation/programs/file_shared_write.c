/* Maps the file named by argv[1] MAP_SHARED and writes one byte of every page, twice
 * over. Without a limit Linux 6.18 takes about one fault per large page-cache folio
 * (a write fault maps the whole folio); under a limit smaller than the file, dirty
 * pages are written back and reclaimed between the passes. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    size_t n = (size_t)st.st_size;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < n; i += 4096)
            p[i] = (char)('a' + r);
    return 0;
}
