/* Writes 24 MiB of anonymous memory and reads a 64 MiB file with read(), three
 * times; under a 32 MiB limit the page cache competes with the program's memory. */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 1;
    size_t n = 24UL << 20;
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    static char buf[65536];
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < n; i += 4096) p[i] = (char)r;
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) return 1;
        while (read(fd, buf, sizeof buf) > 0) {}
        close(fd);
    }
    return 0;
}
