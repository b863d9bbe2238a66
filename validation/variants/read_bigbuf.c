/* read()s a 64 MiB file in 4 MiB calls into one 4 MiB buffer; under an 8 MiB limit
 * the buffer goes to swap while the page cache fills, and each call's copy faults it
 * back in the middle of the read. */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 1;
    size_t n = 4UL << 20;
    char *buf = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return 1;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 1;
    while (read(fd, buf, n) > 0) {}
    return 0;
}
