/* MADV_PAGEOUT: writes 32 MiB of anonymous memory, pages it out and reads it back
 * (from the swap cache: the writes have only just been sent), then maps the file
 * named by argv[1], reads it, pages it out and reads it again (from storage). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: madv_pageout FILE\n");
        return 2;
    }
    size_t n = 32 << 20;
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (size_t i = 0; i < n; i += 4096) p[i] = (char)(1 + (i >> 12));
    if (madvise(p, n, MADV_PAGEOUT) != 0) { perror("madvise"); return 1; }
    volatile char sum = 0;
    for (size_t i = 0; i < n; i += 4096) sum += p[i];
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
    char *f = mmap(0, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (f == MAP_FAILED) return 1;
    for (off_t o = 0; o < st.st_size; o += 4096) sum += f[o];
    if (madvise(f, st.st_size, MADV_PAGEOUT) != 0) { perror("madvise"); return 1; }
    for (off_t o = 0; o < st.st_size; o += 4096) sum += f[o];
    return 0;
}
