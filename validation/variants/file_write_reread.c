/* write()s a 40 MiB file in 64 KiB chunks, then maps it and reads every page twice */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 1;
    static char buf[65536];
    memset(buf, 'w', sizeof buf);
    unsigned long n = 40UL << 20;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 1;
    for (unsigned long o = 0; o < n; o += sizeof buf)
        if (write(fd, buf, sizeof buf) != sizeof buf) return 1;
    volatile char *p = mmap(0, n, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 1;
    unsigned long s = 0;
    for (int r = 0; r < 2; r++)
        for (unsigned long i = 0; i < n; i += 4096) s += p[i];
    close(fd);
    return s == 1;
}
