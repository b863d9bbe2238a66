/* maps a 64 MiB file and reads every third page, twice */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 1;
    unsigned long n = 64UL << 20, s = 0;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 1;
    volatile char *p = mmap(0, n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return 1;
    for (int r = 0; r < 2; r++)
        for (unsigned long i = 0; i < n; i += 3 * 4096) s += p[i];
    close(fd);
    return s == 1;
}
