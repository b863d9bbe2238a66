/* keeps 12 MiB of anonymous memory hot while reading a file with read() in 16 KiB
 * chunks, twice */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 1;
    unsigned long n = 12UL << 20;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    static char buf[16384];
    unsigned long j = 0;
    for (int r = 0; r < 2; r++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) return 1;
        while (read(fd, buf, sizeof buf) > 0) { p[j] += buf[0]; j = (j + 4096) % n; }
        close(fd);
    }
    return 0;
}
