/* Maps a file MAP_PRIVATE, reads one byte of every page, then writes one byte of
 * every other page twice over: the first writes copy file pages into anonymous
 * ones (copy-on-write of the page cache), which then compete with the file's
 * pages, and each other, for the limit. */
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
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    size_t n = (size_t)st.st_size;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    unsigned long s = 0;
    for (size_t i = 0; i < n; i += 4096)
        s += (unsigned char)p[i];
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < n; i += 8192)
            p[i] = (char)(i + r);
    printf("%lu\n", s);
    return 0;
}
