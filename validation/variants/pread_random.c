/* 20,000 pread()s of 4 KiB at random page offsets of a 64 MiB file */
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 1;
    static char buf[4096];
    unsigned long pages = 16384, x = 99, s = 0;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 1;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        if (pread(fd, buf, sizeof buf, (off_t)(((x >> 33) % pages) << 12)) != sizeof buf) return 1;
        s += buf[7];
    }
    close(fd);
    return s == 1;
}
