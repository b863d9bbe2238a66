/* Maps the file named by argv[1] read-only with the madvise advice argv[2]
 * (normal, random or sequential, optionally followed by ",willneed") and reads one
 * byte of every argv[3]-th page, in order: the advice decides how each fault on a
 * page not cached reads ahead, and willneed reads the file's start ahead first. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: file_mmap_advice FILE normal|random|sequential[,willneed] STRIDE\n");
        return 2;
    }
    int willneed = strstr(argv[2], ",willneed") != NULL;
    int advice = !strncmp(argv[2], "random", 6)       ? MADV_RANDOM
                 : !strncmp(argv[2], "sequential", 10) ? MADV_SEQUENTIAL
                                                       : MADV_NORMAL;
    long stride = atol(argv[3]);
    if (stride < 1) return 2;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
    long page = sysconf(_SC_PAGESIZE);
    volatile const char *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    if (madvise((void *)p, st.st_size, advice) != 0) { perror("madvise"); return 1; }
    if (willneed && madvise((void *)p, st.st_size, MADV_WILLNEED) != 0) {
        perror("madvise");
        return 1;
    }
    unsigned sum = 0;
    for (off_t off = 0; off < st.st_size; off += stride * page) sum += (unsigned char)p[off];
    return sum == 0;
}
