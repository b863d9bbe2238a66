/* maps a 32 MiB file MAP_SHARED and writes one byte at 4,000 random pages */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 1;
    unsigned long n = 32UL << 20, pages = n >> 12, x = 12345;
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) return 1;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 1;
    for (int i = 0; i < 4000; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        p[((x >> 33) % pages) << 12] += 1;
    }
    close(fd);
    return 0;
}
